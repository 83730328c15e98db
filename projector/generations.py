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
from schemas import keys

SWITCH = """
-- KEYS[1] the generation pointer. ARGV[1] the generation we expect it to name ('0' = unset),
-- ARGV[2] the new one. Switches only if nobody switched since we looked.
local cur = redis.call('GET', KEYS[1]) or '0'
if cur ~= ARGV[1] then return cur end
redis.call('SET', KEYS[1], ARGV[2])
return ARGV[2]
"""

BUILDING_KEY = f"{keys.PREFIX}:building"
"""HASH generation -> deadline (epoch ms): generations under construction by a replay. The
live projector writes each batch to the served generation and to these, so a replay only has
to cover the log up to the end offsets it read after announcing itself."""


async def served(redis: Redis) -> str:
    """The generation the read API serves (``0`` when never switched)."""
    value = cast(bytes | None, await redis.get(keys.GENERATION_KEY))
    return value.decode() if value else "0"


def new_generation_id() -> str:
    """A fresh generation id: ``g`` + UTC seconds + milliseconds (sorts by creation)."""
    return f"g{int(time.time() * 1000)}"


async def switch(redis: Redis, expected: str, new: str) -> None:
    """Point the read API at ``new`` if it still serves ``expected``.

    Raises :class:`GenerationError` when another generation was switched in meanwhile.
    """
    result = cast(bytes, await redis.eval(SWITCH, 1, keys.GENERATION_KEY, expected, new))
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
    first = pointer.decode() if pointer else "0"
    now = time.time() * 1000
    extra = sorted(g.decode() for g, d in building.items() if int(d) > now and g.decode() != first)
    return [first, *extra]
