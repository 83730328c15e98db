"""The expiry sweep of format 2: expired messages leave with their index and provider entries."""

from __future__ import annotations

import os
import time
import uuid

from projector import generations
from projector.store import ProjectionStore
from projector.sweep import buckets_per_step, sweep_step
from runtime import redis_client
from schemas.layout import meta_key, provider_field
from schemas.status import Status
from tests.factories import record

REDIS_URL = os.environ.get("MSGSTATUS_REDIS_URL", "redis://127.0.0.1:6379/0")
DAY = 86_400_000


async def test_sweep_removes_expired_messages_their_index_and_provider_entries() -> None:
    """Past its retention a message, its index entries and its provider entry are deleted;
    a fresh one stays; a deleted generation is never re-created by a late sweep."""
    redis = redis_client.async_client(REDIS_URL)
    gen = f"sw{uuid.uuid4().hex[:8]}"
    now = int(time.time() * 1000)
    try:
        layout = await generations.layout(redis, gen, 5)
        assert layout is not None
        store = ProjectionStore(redis_client.sync_client(REDIS_URL), layout, DAY)
        old, fresh = str(uuid.uuid4()), str(uuid.uuid4())
        phone = "+4930555111"
        at = now - 3 * DAY
        await store.apply(
            [record(Status.PROVIDER_ACCEPTANCE, at, message_id=old, phone=phone, received_ms=at)],
            now_ms=at,
        )
        await store.apply(
            [
                record(
                    Status.PROVIDER_ACCEPTANCE, now, message_id=fresh, phone=phone, received_ms=now
                )
            ]
        )
        index = layout.phone_index_key(phone)
        assert await redis.zcard(index) == 2
        removed = sweep_step(store, 5, now)
        assert removed == 1
        assert await redis.hget(layout.message_key(old), old) is None
        assert await redis.hget(layout.message_key(fresh), fresh) is not None
        assert await redis.zrange(index, 0, -1) == [fresh.encode()]
        field = provider_field("P1", "pid-1")  # the factory's provider id, shared by both
        entries = await redis.hget(layout.provider_key(field), field)
        assert entries is not None
        assert uuid.UUID(old).bytes not in entries
        assert uuid.UUID(fresh).bytes in entries
        assert buckets_per_step(1000, 1.0, 3600.0) == 1
    finally:
        await generations.delete(redis, gen)
    assert sweep_step(store, 5, now) == 0
    assert await redis.exists(meta_key(gen)) == 0
    await redis.aclose()
