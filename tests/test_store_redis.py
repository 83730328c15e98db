"""The Redis side of the fold against the real Redis: order, duplicates, NOSCRIPT, slots, expiry."""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from collections.abc import AsyncIterator
from typing import cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.crc import key_slot

from projector.store import ProjectionStore
from schemas import keys, packed
from schemas.events import EventRecord, ProviderInfo
from schemas.layout import Layout, meta_key, provider_field
from schemas.status import Channel, Status
from tests.factories import record

REDIS_URL = os.environ.get("MSGSTATUS_REDIS_URL", "redis://127.0.0.1:6379/0")
DAY = 86_400_000
NOW = int(time.time() * 1000)


def writer() -> SyncRedis:
    """A synchronous client for the store (it writes from a worker thread)."""
    return SyncRedis.from_url(REDIS_URL, decode_responses=False)


@pytest.fixture(scope="module")
async def redis() -> AsyncIterator[Redis]:
    """A bytes-returning client of the test Redis."""
    client = Redis.from_url(REDIS_URL, decode_responses=False)
    yield client
    await client.aclose()


async def stored(redis: Redis, generation: str, message_id: str) -> bytes | None:
    """The stored value of a message of a format-2 generation with the default buckets."""
    key = Layout(generation).message_key(message_id)
    return cast(bytes | None, await redis.hget(key, message_id))


async def snapshot(redis: Redis, generation: str) -> dict[str, object]:
    """Every key of a generation with its value (strings, zsets, hashes), generation-neutral
    (the expiry sweep's counter left out)."""
    out: dict[str, object] = {}
    async for key in redis.scan_iter(match=keys.generation_pattern(generation), count=1000):
        name = key.decode().replace(f":{generation}:", ":G:", 1)
        kind = cast(bytes, await redis.type(key)).decode()
        if kind == "string":
            out[name] = await redis.get(key)
        elif kind == "zset":
            out[name] = await redis.zrange(key, 0, -1, withscores=True)
        elif kind == "hash":
            fields = await redis.hgetall(key)
            if key.decode() == meta_key(generation):
                fields.pop(b"sweep", None)  # the expiry sweep's own counter, not content
            out[name] = fields
    return out


def events_of(message_id: str, phone: str) -> st.SearchStrategy[list[EventRecord]]:
    """Random event sets of one message: acceptances (SMS/RCS) and receipts, close in time."""
    one = st.builds(
        lambda status, dt, ps, channel: record(
            status,
            NOW - 60_000 + dt,
            message_id=message_id,
            channel=channel,
            phone=phone,
            reference_key="prop-ref",
            provider_status=ps,
            event_id=str(uuid.UUID(int=dt * 7 + len(status.value))),
            received_ms=NOW,
        ),
        st.sampled_from(list(Status)),
        st.integers(0, 4),
        st.sampled_from(["x", "y"]),
        st.sampled_from([Channel.SMS, Channel.RCS]),
    )
    return st.lists(one, min_size=1, max_size=7)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
async def test_real_redis_state_is_a_function_of_the_event_set(
    redis: Redis, data: st.DataObject
) -> None:
    """Property through Redis: any order, batching and duplication give identical keys."""
    mid, phone = str(uuid.uuid4()), "+4915" + str(random.randint(10**8, 10**9 - 1))
    events = data.draw(events_of(mid, phone))
    rnd = data.draw(st.randoms(use_true_random=False))
    gen_a, gen_b = f"pa{uuid.uuid4().hex[:8]}", f"pb{uuid.uuid4().hex[:8]}"
    await ProjectionStore(writer(), gen_a, 90 * DAY).apply(events)

    store_b = ProjectionStore(writer(), gen_b, 90 * DAY)
    shuffled = events + rnd.sample(events, k=min(3, len(events)))
    rnd.shuffle(shuffled)
    cut = rnd.randint(0, len(shuffled))
    await store_b.apply(shuffled[:cut])
    await store_b.apply(shuffled[cut:])
    await store_b.apply(events)  # a replay of everything changes nothing
    assert await snapshot(redis, gen_a) == await snapshot(redis, gen_b)


async def test_projection_survives_a_flushed_script_cache(redis: Redis) -> None:
    """After SCRIPT FLUSH (restart, failover) the scripts are loaded again, never NOSCRIPT."""
    gen = f"ns{uuid.uuid4().hex[:8]}"
    store = ProjectionStore(writer(), gen, 90 * DAY)
    mid = str(uuid.uuid4())
    await store.apply([record(Status.PROVIDER_ACCEPTANCE, NOW - 5000, message_id=mid)])
    await redis.script_flush()
    await store.apply([record(Status.DELIVERED, NOW - 1000, message_id=mid)])
    raw = await stored(redis, gen, mid)
    assert raw is not None
    assert packed.status_of(raw) is Status.DELIVERED


async def test_concurrent_writers_of_one_message_never_lose_an_event(redis: Redis) -> None:
    """Two projectors writing the same message at once: compare-and-set keeps both events."""
    gen = f"cc{uuid.uuid4().hex[:8]}"
    mid = str(uuid.uuid4())
    events = [record(Status.PROVIDER_ACCEPTANCE, NOW - 9000, message_id=mid)] + [
        record(Status.SENT, NOW - 8000 + i, message_id=mid, provider_status=f"s{i}")
        for i in range(30)
    ]
    stores = [ProjectionStore(writer(), gen, 90 * DAY) for _ in range(3)]
    await asyncio.gather(*(stores[i % 3].apply([e]) for i, e in enumerate(events)))
    raw = await stored(redis, gen, mid)
    assert raw is not None
    assert raw.count(b'",1,') == 30  # every SENT entry (status code 1) is in the state


def test_keys_written_together_share_one_hash_slot() -> None:
    """Each script call touches one Redis Cluster slot, whatever the caller's ids contain."""
    layout = Layout("t1", 97)
    for name, pid in [("twilio", "SM1"), ("a{b}", "c}{d"), ("x:y", "*"), ("", "{}")]:
        field = provider_field(name, pid)
        assert key_slot(layout.provider_key(field).encode()) == key_slot(
            layout.parked_key(field).encode()
        )
    assert provider_field("Twilio", "SM1") == provider_field("twilio", "SM1")


async def test_messages_older_than_the_retention_are_not_kept(redis: Redis) -> None:
    """Sent and received beyond the retention: nothing is written; recent ones expire in time."""
    gen = f"rt{uuid.uuid4().hex[:8]}"
    store = ProjectionStore(writer(), gen, 90 * DAY)
    old, fresh = str(uuid.uuid4()), str(uuid.uuid4())
    await store.apply(
        [
            record(
                Status.PROVIDER_ACCEPTANCE,
                NOW - 100 * DAY,
                message_id=old,
                received_ms=NOW - 100 * DAY,
            ),
            record(Status.PROVIDER_ACCEPTANCE, NOW - 1000, message_id=fresh, received_ms=NOW),
        ]
    )
    assert await stored(redis, gen, old) is None
    raw = await stored(redis, gen, fresh)
    assert raw is not None
    assert 89 * DAY < packed.expiry_of(raw) - int(time.time() * 1000) <= 90 * DAY
    index = Layout(gen).phone_index_key("+1234567890")
    assert await redis.zscore(index, old) is None
    assert await redis.zscore(index, fresh) is not None


async def test_receipt_by_provider_id_is_parked_then_drained_exactly_once(redis: Redis) -> None:
    """A parked receipt is applied when the acceptance registers its provider id, then removed."""
    gen = f"pk{uuid.uuid4().hex[:8]}"
    store = ProjectionStore(writer(), gen, 90 * DAY)
    mid = str(uuid.uuid4())
    early = EventRecord(
        eventId=str(uuid.uuid4()),
        status=Status.DELIVERED,
        occurredAt=NOW - 1000,
        receivedAt=NOW,
        provider=ProviderInfo(name="P1", id="pid-1", status="delivrd", code="0"),
    )
    report = await store.apply([early])
    assert report.parked == 1
    await store.apply([record(Status.PROVIDER_ACCEPTANCE, NOW - 5000, message_id=mid)])
    raw = await stored(redis, gen, mid)
    assert raw is not None
    assert packed.status_of(raw) is Status.DELIVERED
    parked = Layout(gen).parked_key(provider_field("P1", "pid-1"))
    assert await redis.exists(parked) == 0
