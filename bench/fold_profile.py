"""Where the projector's time per event goes: a cProfile of decode + apply, by stage.

Not a benchmark row of its own: :mod:`bench.projector` runs it after its timed runs and puts
the breakdown in the note of the replay row, so that a missed target comes with the profile
that shows why (docs/benchmarks.md). The same records as the timed runs (acceptances, and
DELIVERED receipts trailing them) are decoded and applied in batches of 500 to a fresh
generation of the run's Redis, in this process, under ``cProfile``; each stage is the
inclusive time of the functions that make it up, as a share of the whole and in µs of
(profiled, so inflated) time per event.
"""

from __future__ import annotations

import cProfile
import pstats
import time
import uuid
from collections.abc import Sequence

from aiokafka.structs import ConsumerRecord
from redis import Redis

from projector.batch import decode
from projector.store import ProjectionStore
from schemas.layout import Layout

DAY_MS = 86_400_000

STAGES: dict[str, tuple[tuple[str, str], ...]] = {
    "decode (msgspec, one call per batch)": (("projector/logdecode.py", "decode"),),
    "fold (apply events to the state)": (("projector/fold.py", "apply_all"),),
    "stored value (decode old, render parts, encode)": (
        ("projector/messages.py", "decode"),
        ("schemas/packed.py", "document_parts"),
        ("schemas/packed.py", "encode"),
    ),
    "change detection for push": (("projector/changes.py", "detect"),),
    "index and provider commands (built)": (
        ("projector/indexes.py", "add_commands"),
        ("projector/indexes.py", "displaced_commands"),
        ("projector/parking.py", "register_command"),
    ),
    "Redis round trips (pack, send, read replies)": (("projector/commands.py", "_send"),),
}


def profile(redis_url: str, items: Sequence[tuple[bytes, bytes]], batch: int = 500) -> str:
    """Profile decode + apply of ``items`` ((key, value) log records); returns one line per
    stage: share of the profiled time and µs per event. The generation is deleted after."""
    records = [
        ConsumerRecord("bench", 0, i, 0, 0, k, v, None, len(k), len(v), [])
        for i, (k, v) in enumerate(items)
    ]
    redis = Redis.from_url(redis_url, decode_responses=False)
    generation = f"prof{uuid.uuid4().hex[:8]}"
    store = ProjectionStore(redis, Layout(generation, max(1, len(items) // 40)), 90 * DAY_MS)
    prof = cProfile.Profile()
    started = time.perf_counter()
    prof.enable()
    for i in range(0, len(records), batch):
        events, _ = decode(records[i : i + batch])
        store.apply_sync(events)
    prof.disable()
    wall = time.perf_counter() - started
    try:
        keys = list(redis.scan_iter(match=f"msgstatus:{generation}:*", count=1000))
        for j in range(0, len(keys), 1000):
            redis.unlink(*keys[j : j + 1000])
    finally:
        redis.close()
    stats = pstats.Stats(prof)
    table = stats.stats  # type: ignore[attr-defined]
    total = sum(tt for (_, _, tt, _, _) in table.values())
    n = len(items)
    lines = [
        f"profiled {n:,} events in {wall:.1f} s ({total / n * 1e6:.0f} µs/event under cProfile)"
    ]
    for stage, funcs in STAGES.items():
        cum = sum(
            ct
            for (path, _, name), (_, _, _, ct, _) in table.items()
            if any(path.endswith(f) and name == fn for f, fn in funcs)
        )
        lines.append(f"{stage}: {cum / total:.0%} ({cum / n * 1e6:.0f} µs/event)")
    return "; ".join(lines)
