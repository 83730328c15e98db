"""A minimal Faust table projection: a reference of the projector target (docs/design.md §7).

Run by the Python of a separate virtualenv that has ``faust-streaming`` (it is not a
dependency of msgstatus, and this file imports nothing of msgstatus or of the benchmarks)::

    python bench/faust_app.py worker -l warn

Configuration by environment: ``BENCH_FAUST_BROKER`` (``kafka://127.0.0.1:39092``),
``BENCH_FAUST_TOPIC``, ``BENCH_FAUST_APP`` (the app id, also the consumer group),
``BENCH_FAUST_EXPECT`` (records to fold), ``BENCH_FAUST_OUT`` (where the result goes).

The agent reads the event topic from the start (records keyed by message id, JSON values),
and folds each event into a table keyed by message id: the status of the highest rank and
the number of events, like the projector's fold does (without rendering a document). The
table is Faust's default in-memory store with its changelog topic. When ``EXPECT`` records
are folded, or 60 s after the first one, it writes ``{"records", "first", "last"}``
(monotonic seconds of the first and the last record folded) to ``OUT``.
"""

from __future__ import annotations

import json
import os
import time

import faust

RANK = {
    "PROVIDER_ACCEPTANCE": 0,
    "SENT": 1,
    "REJECTED": 2,
    "UNDELIVERED": 2,
    "DELIVERED": 3,
    "READ": 4,
}
LIMIT_S = 60.0

app = faust.App(
    os.environ.get("BENCH_FAUST_APP", "bench-faust"),
    broker=os.environ.get("BENCH_FAUST_BROKER", "kafka://127.0.0.1:39092"),
    store="memory://",
    value_serializer="json",
    topic_partitions=6,
    consumer_auto_offset_reset="earliest",
    web_enabled=False,
    web_host="127.0.0.1",
    topic_allow_declare=True,
)
events = app.topic(os.environ.get("BENCH_FAUST_TOPIC", "events"), key_serializer="raw")
statuses = app.Table("statuses", default=dict, partitions=6)
EXPECT = int(os.environ.get("BENCH_FAUST_EXPECT", "0"))
OUT = os.environ.get("BENCH_FAUST_OUT", "/tmp/bench-faust.json")  # noqa: S108
progress = {"records": 0, "first": 0.0, "last": 0.0, "written": False}


def write_result() -> None:
    """Write the tally once."""
    if not progress["written"]:
        progress["written"] = True
        with open(OUT + ".tmp", "w") as out:
            json.dump({k: progress[k] for k in ("records", "first", "last")}, out)
        os.replace(OUT + ".tmp", OUT)


@app.agent(events)
async def fold(stream):  # type: ignore[no-untyped-def]
    """Fold each event into its message's table entry."""
    async for key, event in stream.items():
        now = time.monotonic()
        if not progress["records"]:
            progress["first"] = now
        current = statuses[key]
        rank = RANK.get(event.get("status", ""), -1)
        if not current or rank >= current["rank"]:
            current = {"status": event.get("status"), "rank": rank, "n": current.get("n", 0)}
        current["n"] += 1
        statuses[key] = current
        progress["records"] += 1
        progress["last"] = now
        if progress["records"] >= EXPECT or now - progress["first"] > LIMIT_S:
            write_result()


if __name__ == "__main__":
    app.main()
