"""The Redis setting format 2's memory figures rely on: buckets stored as listpacks."""

from __future__ import annotations

import logging
import os
import time
import uuid

import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from projector import generations
from projector.store import ProjectionStore
from runtime.redis_config import LISTPACK_VALUE_BYTES, check_listpack
from schemas.status import Status
from tests.factories import record

REDIS_URL = os.environ.get("MSGSTATUS_REDIS_URL", "redis://127.0.0.1:6379/0")
DAY = 86_400_000


async def test_buckets_are_listpacks_with_the_recommended_setting() -> None:
    """With the hash-max-listpack-value .ci/redis.sh starts Redis with, a bucket holding 20
    delivered messages stays one compact listpack (as in docs/benchmarks.md's memory rows)."""
    redis = Redis.from_url(REDIS_URL, decode_responses=False)
    before = await check_listpack(redis)
    assert before is not None
    gen = f"lp{uuid.uuid4().hex[:8]}"
    now = int(time.time() * 1000)
    try:
        await redis.config_set("hash-max-listpack-value", LISTPACK_VALUE_BYTES)
        assert await check_listpack(redis) == LISTPACK_VALUE_BYTES
        layout = await generations.layout(redis, gen, 1)
        assert layout is not None
        store = ProjectionStore(SyncRedis.from_url(REDIS_URL), layout, DAY)
        events = []
        for i in range(20):
            mid = str(uuid.uuid4())
            events += [
                record(Status.PROVIDER_ACCEPTANCE, now, message_id=mid, phone=f"+49305551{i:03d}"),
                record(Status.DELIVERED, now + 5, message_id=mid),
            ]
        await store.apply(events)
        key = layout.all_message_keys()[0]
        assert await redis.hlen(key) == 20
        assert await redis.object("encoding", key) == b"listpack"
    finally:
        await redis.config_set("hash-max-listpack-value", before)
        await generations.delete(redis, gen)
        await redis.aclose()


async def test_a_server_that_would_store_buckets_as_hash_tables_is_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """hash-max-listpack-value at Redis's default (64) gives a warning naming the setting."""
    redis = Redis.from_url(REDIS_URL, decode_responses=False)
    before = await check_listpack(redis)
    assert before is not None
    try:
        await redis.config_set("hash-max-listpack-value", 64)
        with caplog.at_level(logging.WARNING, logger="runtime.redis_config"):
            assert await check_listpack(redis) == 64
        assert "hash-max-listpack-value is 64" in caplog.text
    finally:
        await redis.config_set("hash-max-listpack-value", before)
        await redis.aclose()
