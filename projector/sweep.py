"""The expiry sweep of a format-2 generation: messages past their retention leave.

Bucket fields carry no TTL of their own (Redis 7.0 has none per field), so the projector
sweeps: every ``sweep_every_s`` it claims the next range of buckets with one INCRBY on the
generation's sweep counter (several projectors share the work without overlap), deletes the
fields whose value's expiry has passed (one script call per bucket, one slot each), then
removes those messages from their indexes and provider ids. Reads never show an expired
message meanwhile: its value carries its expiry (schemas.packed).
"""

from __future__ import annotations

import math
from typing import Any

from projector import indexes, parking
from projector.store import ProjectionStore
from schemas import packed
from schemas.layout import meta_key


def buckets_per_step(buckets: int, every_s: float, cycle_s: float) -> int:
    """How many buckets one step sweeps so that all are visited once per ``cycle_s``."""
    return max(1, math.ceil(buckets * every_s / cycle_s))


def sweep_step(store: ProjectionStore, per_step: int, now_ms: int) -> int:
    """Sweep the next ``per_step`` buckets of ``store``'s generation; returns messages removed."""
    layout, io = store.layout, store.io
    claimed = io.execute([io.evalsha("claim", [meta_key(layout.generation)], [per_step])])[0]
    if claimed is None:
        return 0  # the generation was deleted
    end = int(claimed)
    numbers = sorted({b % layout.buckets for b in range(end - per_step, end)})
    keys_ = [f"{layout.message_prefix}{b}}}" for b in numbers]
    replies = io.execute([io.evalsha("sweep", [k], [now_ms]) for k in keys_])
    cleanup: list[tuple[Any, ...]] = []
    removed = 0
    for reply in replies:
        for mid, raw in zip(reply[::2], reply[1::2], strict=True):
            removed += 1
            acc = packed.decode(raw).acceptance
            if acc is None:
                continue
            cleanup += indexes.remove_commands(layout, mid.decode(), acc)
            if acc.provider_id is not None:
                cleanup.append(parking.forget_command(io, layout, mid.decode(), acc))
    if cleanup:
        io.execute(cleanup)
    return removed
