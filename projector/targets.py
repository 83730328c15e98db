"""The store of a generation, by its format: format 2 (projector.store) or format 1.

Format 1 stays writable until every deployment has replayed into format 2, so a projector
of this release keeps the generation an earlier release built up to date while a replay
builds its successor (docs/operations.md, "Upgrading a deployment from projection format 1").
"""

from __future__ import annotations

from redis import Redis as SyncRedis
from redis.asyncio import Redis

from projector import generations
from projector.legacy_store import LegacyStore
from projector.store import ProjectionStore

Store = ProjectionStore | LegacyStore


async def open_store(
    redis: Redis, writer: SyncRedis, generation: str, retention_ms: int, buckets: int
) -> Store:
    """A store writing ``generation`` through ``writer``; a new format-2 generation is given
    ``buckets`` buckets (an existing one keeps its own)."""
    layout = await generations.layout(redis, generation, buckets)
    if layout is None:
        return LegacyStore(writer, generation, retention_ms)
    return ProjectionStore(writer, layout, retention_ms)
