"""Projection generations: which one the read API serves, the atomic switch, and clean-up.

A generation is a key prefix (``msgstatus:<generation>:``). The read API serves the one named
by ``msgstatus:generation``; replay builds another beside it and switches the pointer in one
atomic step, so reads see either the old complete generation or the new complete one.
"""

from __future__ import annotations

import time
from typing import cast

from redis.asyncio import Redis

from projector.errors import GenerationError
from runtime import redis_client
from schemas import keys
from schemas.layout import DEFAULT_BUCKETS, FORMAT, Layout, is_legacy, meta_key
from schemas.rebuild import rebuild_key

SWITCH = """
-- KEYS[1] the generation pointer, KEYS[2] (single node only) the positions of format-1
-- generation 0. ARGV[1] the generation we expect it to name (an unset pointer names what
-- `served` says), ARGV[2] the new one, ARGV[3] the default generation. Switches only if
-- nobody switched since we looked.
local cur = redis.call('GET', KEYS[1])
if not cur then
  cur = (#KEYS > 1 and redis.call('EXISTS', KEYS[2]) == 1) and '0' or ARGV[3]
end
if cur ~= ARGV[1] then return cur end
redis.call('SET', KEYS[1], ARGV[2])
return ARGV[2]
"""

BUILDING_KEY = f"{keys.PREFIX}:building"
"""HASH generation -> deadline (epoch ms): generations under construction by a replay. The
live projector writes each batch to the served generation and to these, so a replay only has
to cover the log up to the end offsets it read after announcing itself."""


UNSET = """
-- KEYS[1] the generation pointer, KEYS[2] (single node only) the positions of format-1
-- generation 0. The pointer, else '0' when an older release has been projecting into
-- generation 0 (never switched), else the default generation of the current format.
local cur = redis.call('GET', KEYS[1])
if cur then return cur end
if #KEYS > 1 and redis.call('EXISTS', KEYS[2]) == 1 then return '0' end
return ARGV[1]
"""

DEFAULT_GENERATION = "1"
"""The generation a deployment that never replayed serves (format 2)."""


async def _unset(redis: Redis) -> tuple[list[str], str]:
    """Keys and default of :data:`UNSET` and :data:`SWITCH`. On a Redis Cluster the pointer
    and format 1's positions are in different slots, so the positions are looked at first,
    on their own (they only ever appear by an earlier release projecting into ``0``)."""
    if not redis_client.is_cluster(redis):
        return [keys.GENERATION_KEY, keys.positions_key("0")], DEFAULT_GENERATION
    legacy = await redis.exists(keys.positions_key("0"))
    return [keys.GENERATION_KEY], "0" if legacy else DEFAULT_GENERATION


async def served(redis: Redis) -> str:
    """The generation the read API serves: the pointer; when it was never set, ``0`` for a
    deployment an earlier release has been projecting (format 1), else ``1``. One round trip
    (two on a Redis Cluster).
    """
    keys_, default = await _unset(redis)
    value = await redis.eval(UNSET, len(keys_), *keys_, default)
    return cast(bytes, value).decode()


def new_generation_id() -> str:
    """A fresh generation id: ``r`` + epoch milliseconds (sorts by creation; format 2)."""
    return f"r{int(time.time() * 1000)}"


async def layout(redis: Redis, generation: str, buckets: int = DEFAULT_BUCKETS) -> Layout | None:
    """The key layout of a format-2 generation (None for format 1). Creates its meta record
    with ``buckets`` when it has none yet; an existing generation keeps its own count."""
    if is_legacy(generation):
        return None
    key = meta_key(generation)
    await redis.hsetnx(key, "format", FORMAT)
    await redis.hsetnx(key, "buckets", buckets)
    found = await redis.hget(key, "buckets")
    return Layout(generation, int(cast(bytes, found)))


async def existing_layout(redis: Redis, generation: str) -> Layout | None:
    """The layout of a format-2 generation that exists (None for format 1 or not yet)."""
    if is_legacy(generation):
        return None
    found = await redis.hget(meta_key(generation), "buckets")
    return None if found is None else Layout(generation, int(cast(bytes, found)))


async def switch(redis: Redis, expected: str, new: str) -> None:
    """Point the read API at ``new`` if it still serves ``expected``.

    Raises :class:`GenerationError` when another generation was switched in meanwhile.
    """
    keys_, default = await _unset(redis)
    result = cast(bytes, await redis.eval(SWITCH, len(keys_), *keys_, expected, new, default))
    if result.decode() != new:
        raise GenerationError(f"the served generation changed to {result.decode()} meanwhile")


async def delete(redis: Redis, generation: str, batch: int = 1000) -> int:
    """Delete every key of ``generation`` (SCAN + UNLINK, in batches); returns how many.

    Refuses (``ValueError``) to delete the generation being served.
    """
    if generation == await served(redis):
        raise ValueError(f"generation {generation} is being served")
    removed = 0
    chunk: list[bytes] = []
    async for key in redis.scan_iter(match=keys.generation_pattern(generation), count=batch):
        chunk.append(key)
        if len(chunk) >= batch:
            removed += int(await redis.unlink(*chunk))
            chunk.clear()
    if chunk:
        removed += int(await redis.unlink(*chunk))
    # Its rebuild marker lives outside its key pattern (the API reads it by name).
    removed += int(await redis.unlink(rebuild_key(generation)))
    return removed


async def mark_building(redis: Redis, generation: str, ttl_s: int) -> None:
    """Announce (or keep announcing) a generation under construction for ``ttl_s`` seconds."""
    await redis.hset(BUILDING_KEY, generation, str(int(time.time() * 1000) + ttl_s * 1000))


async def unmark_building(redis: Redis, generation: str) -> None:
    """The generation is no longer under construction (switched to, or abandoned)."""
    await redis.hdel(BUILDING_KEY, generation)


async def still_building(redis: Redis, generation: str) -> bool:
    """True while the announcement of ``generation`` has not lapsed."""
    deadline = cast(bytes | None, await redis.hget(BUILDING_KEY, generation))
    return deadline is not None and int(deadline) > time.time() * 1000


async def targets(redis: Redis, pinned: str = "") -> list[str]:
    """Generations a live projector writes to: the served one (or the pinned one) and those
    under construction whose announcement has not lapsed. One round trip. A pinned
    generation is written alone."""
    if pinned:
        return [pinned]
    async with redis.pipeline(transaction=False) as pipe:
        pipe.get(keys.GENERATION_KEY)
        pipe.hgetall(BUILDING_KEY)
        pointer, building = await pipe.execute()
    first = pointer.decode() if pointer else await served(redis)
    now = time.time() * 1000
    extra = sorted(g.decode() for g, d in building.items() if int(d) > now and g.decode() != first)
    return [first, *extra]
