"""The Redis side of the fold against the real Redis: order, duplicates, NOSCRIPT, slots, expiry."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.crc import key_slot

from projector import generations, parking
from projector.store import ProjectionStore
from runtime import redis_client
from schemas import keys, packed
from schemas.events import EventRecord, ProviderInfo
from schemas.layout import Layout, meta_key, provider_field
from schemas.status import Channel, Status
from tests.factories import record
from tests.support.redis_urls import database

# A Redis database of this module's own: its SCANs of whole generations then pass over this
# module's keys only, not over everything the rest of the suite wrote.
REDIS_URL = database(os.environ.get("MSGSTATUS_REDIS_URL", "redis://127.0.0.1:6379/0"), 5)
DAY = 86_400_000
NOW = int(time.time() * 1000)


def writer() -> SyncRedis:
    """A synchronous client for the store (it writes from a worker thread)."""
    return redis_client.sync_client(REDIS_URL)


@pytest.fixture(scope="module")
async def redis() -> AsyncIterator[Redis]:
    """A bytes-returning client of the test Redis."""
    client = redis_client.async_client(REDIS_URL)
    yield client
    await client.aclose()


async def stored(redis: Redis, generation: str, message_id: str) -> bytes | None:
    """The stored value of a message of a format-2 generation with the default buckets."""
    key = Layout(generation).message_key(message_id)
    return cast(bytes | None, await redis.hget(key, message_id))


def kind_of(name: str) -> str:
    """The kind of a generation-neutral key name ``msgstatus:G:<t>:<kind>:{...}``: ``m``,
    ``pm``, ``pk``, ``p``, ``r`` (schemas.layout); ``meta``/``pos`` for the generation's own."""
    parts = name.split(":")
    return parts[3] if len(parts) > 4 and parts[4].startswith("{") else parts[2]


async def snapshot(redis: Redis, generation: str) -> dict[str, object]:
    """Every key of a generation with its value (hashes, zsets), generation-neutral. The
    expiry sweep's counter is left out (not content); a provider id's entries are compared
    as a set (their order is the order of registration, and routing does not depend on it:
    projector.provider_routing)."""
    out: dict[str, object] = {}
    async for key in redis.scan_iter(match=keys.generation_pattern(generation), count=1000):
        name = key.decode().replace(f":{generation}:", ":G:", 1)
        kind = cast(bytes, await redis.type(key)).decode()
        value: object = None
        if kind == "string":
            value = await redis.get(key)
        elif kind == "zset":
            value = await redis.zrange(key, 0, -1, withscores=True)
        elif kind == "hash":
            fields = cast(dict[bytes, bytes], await redis.hgetall(key))
            if key.decode() == meta_key(generation):
                fields.pop(b"sweep", None)
            if kind_of(name) == "pm":
                value = {f: sorted(parking.decode_entries(v), key=repr) for f, v in fields.items()}
            else:
                value = fields
        out[name] = value
    return out


async def expiries(redis: Redis, generation: str) -> dict[str, int]:
    """Every key of a generation with its expiry time (epoch ms; -1 without), neutral."""
    out: dict[str, int] = {}
    async for key in redis.scan_iter(match=keys.generation_pattern(generation), count=1000):
        out[key.decode().replace(f":{generation}:", ":G:", 1)] = await redis.pexpiretime(key)
    return out


def check_pointers(values: dict[str, Any], expiry: dict[str, int]) -> None:
    """Format 2 gives a TTL to kept receipts (``pk``) only, in the future; every other key
    lives until the sweep. Every index entry and provider entry names a stored message that
    has not expired, index entries scored by its send time."""
    assert {k for k, t in expiry.items() if t != -1} == {k for k in expiry if kind_of(k) == "pk"}
    assert all(t > NOW for k, t in expiry.items() if t != -1)
    stored_ = {
        mid.decode(): packed.decode(raw)
        for key, value in values.items()
        if kind_of(key) == "m"
        for mid, raw in value.items()
    }
    expires = {
        mid.decode(): packed.expiry_of(raw)
        for key, value in values.items()
        if kind_of(key) == "m"
        for mid, raw in value.items()
    }
    assert all(t > NOW for t in expires.values())
    for key, value in values.items():
        if kind_of(key) in ("p", "r"):
            for member, score in value:
                acc = stored_[member.decode()].acceptance
                assert acc is not None, key
                assert acc.occurred_ms == score, key
        elif kind_of(key) == "pm":
            assert all(e.message_id in stored_ for entries in value.values() for e in entries)


PHONES = ("+491511234567", "+491517654321")
REFERENCES = ("prop-ref-a", "prop-ref-b")


def world(tag: str) -> st.SearchStrategy[list[EventRecord]]:
    """Random event sets of three messages sharing two phones and two reference keys.

    Acceptances (SMS/RCS, either phone and reference) and receipts of every status with varied
    provider words and codes; a receipt names its message by id or only by provider name and
    id, so it may be parked until the acceptance registers that id. Event ids are drawn
    independently of the content; receive times vary, so expiry follows the later of sent
    and received.
    """
    messages = [(str(uuid.uuid4()), f"P{i}", f"{tag}-pid-{i}") for i in range(3)]

    def build(
        *,
        msg: int,
        status: Status,
        dt: int,
        by_provider: bool,
        words: tuple[str, str | None],
        channel: Channel,
        phone: str,
        reference: str,
        event_id: uuid.UUID,
        received_dt: int,
    ) -> EventRecord:
        mid, name, pid = messages[msg]
        common = {
            "eventId": str(event_id),
            "status": status,
            "occurredAt": NOW - 60_000 + dt,
            "receivedAt": NOW - received_dt,
        }
        if status is Status.PROVIDER_ACCEPTANCE:
            return EventRecord.model_validate(
                {
                    **common,
                    "messageId": mid,
                    "channel": channel,
                    "phoneNumber": phone,
                    "reference": {"service": "S", "key": reference},
                    "sms": {"segments": 1} if channel is Channel.SMS else None,
                    "provider": {"name": name, "id": pid, "status": "accepted", "code": "0"},
                }
            )
        provider = {"status": words[0], "code": words[1]}
        if by_provider:
            return EventRecord.model_validate(
                {**common, "provider": {**provider, "name": name.lower(), "id": pid}}
            )
        return EventRecord.model_validate({**common, "messageId": mid, "provider": provider})

    one = st.builds(
        build,
        msg=st.integers(0, 2),
        status=st.sampled_from(list(Status)),
        dt=st.integers(0, 4),
        by_provider=st.booleans(),
        words=st.tuples(st.sampled_from(["x", "y"]), st.sampled_from(["0", "1", "30003", None])),
        channel=st.sampled_from([Channel.SMS, Channel.RCS]),
        phone=st.sampled_from(PHONES),
        reference=st.sampled_from(REFERENCES),
        event_id=st.uuids(),
        received_dt=st.sampled_from([0, 30 * DAY]),
    )
    return st.lists(one, min_size=1, max_size=10)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
async def test_real_redis_state_is_a_function_of_the_event_set(
    redis: Redis, data: st.DataObject
) -> None:
    """Property through Redis: any order, batching and duplication give identical keys, with
    receipts parked by provider id and applied on acceptance, shared phone and reference
    indexes and expiry times included."""
    tag = uuid.uuid4().hex[:8]
    events = data.draw(world(tag))
    rnd = data.draw(st.randoms(use_true_random=False))
    gen_a, gen_b = f"pa{tag}", f"pb{tag}"
    await ProjectionStore(writer(), gen_a, 90 * DAY).apply(events)

    store_b = ProjectionStore(writer(), gen_b, 90 * DAY)
    shuffled = events + rnd.sample(events, k=min(3, len(events)))
    rnd.shuffle(shuffled)
    cuts = sorted(rnd.randint(0, len(shuffled)) for _ in range(2))
    for part in (shuffled[: cuts[0]], shuffled[cuts[0] : cuts[1]], shuffled[cuts[1] :]):
        await store_b.apply(part)
    await store_b.apply(events)  # a replay of everything changes nothing
    a, b = await snapshot(redis, gen_a), await snapshot(redis, gen_b)
    ta, tb = await expiries(redis, gen_a), await expiries(redis, gen_b)
    assert a == b
    # Expiry times follow from the events alone: a message's is in its value (compared
    # above), the kept receipts' is their key's TTL.
    assert ta == tb
    check_pointers(a, ta)
    check_pointers(b, tb)
    for generation in (gen_a, gen_b):  # keeps the database small for the next examples' SCANs
        await generations.delete(redis, generation)


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
    sent = [e for e in packed.decode(raw).entries if e.status is Status.SENT]
    assert sorted(e.provider_status or "" for e in sent) == sorted(f"s{i}" for i in range(30))


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
    assert packed.expiry_of(raw) == NOW + 90 * DAY  # received after it was sent
    index = Layout(gen).phone_index_key("+1234567890")
    assert await redis.zscore(index, old) is None
    assert await redis.zscore(index, fresh) == NOW - 1000


async def test_receipt_by_provider_id_is_parked_then_drained_exactly_once(redis: Redis) -> None:
    """A parked receipt is applied once when the acceptance registers its provider id; it
    stays kept with the provider id (a later acceptance of a reused id may re-route it:
    projector.provider_routing), and applying the acceptance again changes nothing."""
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
    accepted = record(Status.PROVIDER_ACCEPTANCE, NOW - 5000, message_id=mid)
    await store.apply([accepted])
    raw = await stored(redis, gen, mid)
    assert raw is not None
    assert packed.status_of(raw) is Status.DELIVERED
    assert await redis.exists(Layout(gen).parked_key(provider_field("P1", "pid-1"))) == 1
    await store.apply([accepted])
    assert await stored(redis, gen, mid) == raw


async def test_every_key_of_a_message_expires_from_the_later_of_sent_and_received(
    redis: Redis,
) -> None:
    """A message's value expires RETENTION after the later of its send time and its first
    receive time; receipts kept with a provider id RETENTION after they were received (their
    key's TTL); no other key has a TTL (indexes and provider entries go with the sweep)."""
    gen = f"ex{uuid.uuid4().hex[:8]}"
    store = ProjectionStore(writer(), gen, 90 * DAY)
    layout = Layout(gen)
    a, b = str(uuid.uuid4()), str(uuid.uuid4())

    def by_provider(pid: str, received_ms: int) -> EventRecord:
        return EventRecord(
            eventId=str(uuid.uuid4()),
            status=Status.DELIVERED,
            occurredAt=received_ms,
            receivedAt=received_ms,
            provider=ProviderInfo(name="P1", id=pid, status="delivrd", code="0"),
        )

    # A: sent 10 days ago, its first receipt (parked by provider id) received 4 days ago.
    await store.apply([by_provider("pid-a", NOW - 4 * DAY), by_provider("pid-x", NOW - 3 * DAY)])
    accept_a = record(
        Status.PROVIDER_ACCEPTANCE,
        NOW - 10 * DAY,
        message_id=a,
        phone="+4930111111",
        reference_key=f"ref-{gen}",
        received_ms=NOW - 2 * DAY,
    ).model_copy(update={"provider": ProviderInfo(name="P1", id="pid-a", status="ok", code="0")})
    # B: received 5 days ago, sent (by the provider's clock) 1 day ago: the later counts.
    accept_b = record(
        Status.PROVIDER_ACCEPTANCE,
        NOW - 1 * DAY,
        message_id=b,
        phone="+4930222222",
        received_ms=NOW - 5 * DAY,
    )
    await store.apply([accept_a, accept_b])
    raw_a, raw_b = await stored(redis, gen, a), await stored(redis, gen, b)
    assert raw_a is not None
    assert raw_b is not None
    assert packed.expiry_of(raw_a) == NOW - 4 * DAY + 90 * DAY
    assert packed.expiry_of(raw_b) == NOW - 1 * DAY + 90 * DAY
    found = await expiries(redis, gen)
    with_ttl = {k: t for k, t in found.items() if t != -1}
    neutral = Layout("G")
    assert with_ttl == {
        neutral.parked_key(provider_field("P1", "pid-x")): NOW - 3 * DAY + 90 * DAY,
        # Receipts routed by provider id stay with the id for routing (docs/providers.md).
        neutral.parked_key(provider_field("P1", "pid-a")): NOW - 4 * DAY + 90 * DAY,
    }
    assert {kind_of(k) for k in found} == {"m", "pm", "pk", "p", "r"}
    assert await redis.zscore(layout.phone_index_key("+4930111111"), a) == NOW - 10 * DAY
    assert await redis.zscore(layout.reference_index_key(f"ref-{gen}"), a) == NOW - 10 * DAY
    await generations.delete(redis, gen)


async def test_a_provider_entry_follows_the_folded_acceptance_in_any_order(redis: Redis) -> None:
    """Two acceptances of one message with different send times, in either order: the
    provider id's entry holds the send time of the acceptance the fold keeps."""
    mid = str(uuid.uuid4())
    first = record(Status.PROVIDER_ACCEPTANCE, NOW - 2000, message_id=mid)
    second = record(Status.PROVIDER_ACCEPTANCE, NOW - 1000, message_id=mid)
    found = []
    for order in ([first, second], [second, first]):
        gen = f"pe{uuid.uuid4().hex[:8]}"
        store = ProjectionStore(writer(), gen, 90 * DAY)
        for event in order:
            await store.apply([event])
        field = provider_field("P1", "pid-1")
        raw = cast(bytes, await redis.hget(Layout(gen).provider_key(field), field))
        found.append(parking.decode_entries(raw))
        await generations.delete(redis, gen)
    assert found[0] == found[1]
    assert len(found[0]) == 1
