"""The expiry sweep of a format-2 generation: messages past their retention leave.

Bucket fields carry no TTL of their own (Redis 7.0 has none per field), so the projector
sweeps: every ``sweep_every_s`` it claims the next range of buckets with one INCRBY on the
generation's sweep counter (several projectors share the work without overlap), deletes the
fields whose value's expiry has passed (one script call per bucket, one slot each), then
removes those messages from their indexes and provider ids. Reads never show an expired
message meanwhile: its value carries its expiry (schemas.packed). A claimed bucket number
is swept in every tenant's part of the generation (the default tenant and those of its
tenants set, schemas.layout.tenants_key).
"""

from __future__ import annotations

import math
from typing import Any

from projector import indexes, parking
from projector.store import ProjectionStore
from schemas import packed
from schemas.layout import meta_key, tenants_key
from schemas.tenancy import DEFAULT_TENANT


def buckets_per_step(buckets: int, every_s: float, cycle_s: float) -> int:
    """How many buckets one step sweeps so that all are visited once per ``cycle_s``."""
    return max(1, math.ceil(buckets * every_s / cycle_s))


def sweep_step(store: ProjectionStore, per_step: int, now_ms: int) -> int:
    """Sweep the next ``per_step`` buckets of ``store``'s generation; returns messages removed."""
    layout, io = store.layout, store.io
    claimed, others = io.execute(
        [
            io.evalsha("claim", [meta_key(layout.generation)], [per_step]),
            ("SMEMBERS", tenants_key(layout.generation)),
        ]
    )
    if claimed is None:
        return 0  # the generation was deleted
    end = int(claimed)
    numbers = sorted({b % layout.buckets for b in range(end - per_step, end)})
    tenants = [DEFAULT_TENANT, *sorted(t.decode() for t in others or ())]
    layouts = [store.layout_of(t) for t in tenants]
    keyed = [(lay, f"{lay.message_prefix}{b}}}") for lay in layouts for b in numbers]
    replies = io.execute([io.evalsha("sweep", [k], [now_ms]) for _, k in keyed])
    cleanup: list[tuple[Any, ...]] = []
    removed = 0
    for (layout, _), reply in zip(keyed, replies, strict=True):
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
