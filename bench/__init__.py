"""Benchmarks of the targets of docs/design.md §7, as ratios to reference servers run alongside.

Run ``python -m bench [name ...]`` (``--help`` for the options). Every benchmark is a module
of this package with a ``run(ctx)`` function that returns result rows; :mod:`bench.__main__`
runs them, prints the table and can write it into ``docs/benchmarks.md``.

Only loopback addresses are ever load-tested (:func:`bench.common.require_loopback`), and
every load loop is bounded in count and in time.
"""

BENCHMARKS = (
    "read_by_id",
    "read_lists",
    "ingest",
    "overload",
    "projector",
    "freshness",
    "memory",
)
"""Every benchmark module, in the order a full run executes them."""
