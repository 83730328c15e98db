"""Redis helpers of the benchmarks: loading a generation, reading back, cleaning up."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import cast

import redis
from redis.asyncio import Redis

from bench.events import Message, load_projection
from projector import generations
from schemas import layout


def client(url: str) -> redis.Redis:
    """A synchronous client returning bytes."""
    return redis.Redis.from_url(url, decode_responses=False)


def load(url: str, generation: str, messages: Sequence[Message]) -> None:
    """Load messages into ``generation`` with the projector's own store code."""

    asyncio.run(load_projection(url, generation, messages))


def stored(url: str, generation: str, message_id: str) -> bytes:
    """The stored value of one message (schemas.packed)."""
    conn = client(url)
    buckets = int(cast(bytes, conn.hget(layout.meta_key(generation), "buckets")))
    key = layout.Layout(generation, buckets).message_key(message_id)
    raw = conn.hget(key, message_id)
    if raw is None:
        raise RuntimeError(f"message {message_id} is not in generation {generation}")
    return cast(bytes, raw)


def drop_generation(url: str, generation: str) -> int:
    """Delete every key of a (bench) generation; returns how many."""

    async def go() -> int:
        conn = Redis.from_url(url, decode_responses=False)
        try:
            return await generations.delete(conn, generation)
        finally:
            await conn.aclose()

    return asyncio.run(go())


def drop_keys(url: str, pattern: str) -> int:
    """Delete keys matching a pattern of this run's own (never user input)."""
    conn = client(url)
    removed = 0
    batch: list[bytes] = []
    for key in conn.scan_iter(match=pattern, count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            removed += int(conn.unlink(*batch))
            batch.clear()
    if batch:
        removed += int(conn.unlink(*batch))
    return removed


def server_version(url: str) -> str:
    """``redis_version`` of the server."""
    info = cast(dict[str, object], client(url).info("server"))
    return str(info.get("redis_version", "unknown"))
