"""Field report: provider message ids are reused (SMSC ids are counters and wrap).

The rule (projector.provider_routing, docs/providers.md "Provider ids reused"): a receipt that
names its message only by provider id goes to the message with that id whose recipient is
the receipt's (any, when none is), sent latest but not after the receipt. Tested through the
real stack with the SMPP adapter, and as properties: of the rule itself, and through the real
Redis, where any arrival order and batching must give the same projection.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from projector.provider_routing import Candidate, route
from projector.store import ProjectionStore
from runtime import redis_client
from schemas.events import EventRecord, ProviderInfo, SmsInfo
from schemas.layout import Layout
from schemas.status import Channel, Status
from schemas.stored import event_key
from tests.factories import acceptance
from tests.support.stack import Stack, new_stack
from tests.test_store_redis import snapshot

SMPP_TOKEN = "smpp-token-0123456789"
REDIS_URL = os.environ.get("MSGSTATUS_REDIS_URL", "redis://127.0.0.1:6379/0")
DAY = 86_400_000
NOW = int(time.time() * 1000)


@pytest.fixture(scope="module")
async def stack() -> AsyncIterator[Stack]:
    """A stack with the SMPP adapter configured (ids as text)."""
    s = new_stack()
    await s.start(smpp_webhook_token=SMPP_TOKEN)
    yield s
    await s.close()


async def smpp_receipt(stack: Stack, pid: str, stat: str, done: str, to: str | None) -> None:
    """A Kannel-style receipt text for SMPP id ``pid`` (``to`` without ``+``, or none)."""
    receipt = f"id:{pid} sub:001 dlvrd:001 submit date:{done} done date:{done} stat:{stat} err:000"
    params = {"token": SMPP_TOKEN, "receipt": receipt} | ({"to": to} if to else {})
    async with stack.http.get(f"{stack.ingest_url}/webhooks/smpp?{urlencode(params)}") as resp:
        assert resp.status == 200, await resp.text()


async def accept(stack: Stack, pid: str, phone: str, at: str) -> str:
    """The acceptance of a fresh message with SMPP id ``pid`` to ``phone``; its id."""
    mid = str(uuid.uuid4())
    reply = await stack.post(acceptance(mid, provider="smpp", provider_id=pid, phone=phone, at=at))
    assert reply.status == 202, reply.body
    return mid


async def statuses(stack: Stack, mid: str) -> list[str]:
    """The statuses in a message's history."""
    reply = await stack.get(f"/api/messagestatus/{mid}/history")
    return [e["status"] for e in reply.body["events"]]


async def test_reused_smpp_id_reaches_the_second_message(stack: Stack) -> None:
    """The field report: M1 (418000123, +15550100001) DELIVERED; later M2 with the same id
    to +15550100002 gets ``stat:UNDELIV`` for ``to=15550100002``: M2 UNDELIVERED, M1 untouched."""
    pid = "418000123"
    m1 = await accept(stack, pid, "+15550100001", "2026-08-01T10:00:00Z")
    await smpp_receipt(stack, pid, "DELIVRD", "2608011001", "15550100001")
    await stack.wait_for_status(m1, "DELIVERED")
    m2 = await accept(stack, pid, "+15550100002", "2026-08-02T10:00:00Z")
    await smpp_receipt(stack, pid, "UNDELIV", "2608021001", "15550100002")
    await stack.wait_for_status(m2, "UNDELIVERED")
    assert await statuses(stack, m1) == ["PROVIDER_ACCEPTANCE", "DELIVERED"]


async def test_receipt_before_the_reused_ids_acceptance_moves_when_it_arrives(
    stack: Stack,
) -> None:
    """Sibling, other order and no recipient in the receipt: M2's receipt arrives before M2's
    acceptance, so M1 holds it for a while; when M2 is accepted it moves to M2, and M1's
    history is as before."""
    pid = str(random.randint(10**8, 10**9))
    m1 = await accept(stack, pid, "+15550100011", "2026-08-01T10:00:00Z")
    await smpp_receipt(stack, pid, "DELIVRD", "2608011001", None)
    await stack.wait_for_status(m1, "DELIVERED")
    await smpp_receipt(stack, pid, "UNDELIV", "2608021001", None)

    async def m1_holds_it() -> bool:
        return "UNDELIVERED" in await statuses(stack, m1)

    await stack.wait_for(m1_holds_it, 15, "the early receipt to reach M1 first")
    m2 = await accept(stack, pid, "+15550100012", "2026-08-02T10:00:00Z")
    await stack.wait_for_status(m2, "UNDELIVERED")

    async def m1_restored() -> bool:
        return await statuses(stack, m1) == ["PROVIDER_ACCEPTANCE", "DELIVERED"]

    await stack.wait_for(m1_restored, 15, "the receipt to leave M1")


# --- the rule as a property --------------------------------------------------------------------

PHONES = ["+15550100021", "+15550100022"]
candidates_st = st.lists(
    st.builds(
        Candidate,
        message_id=st.sampled_from([f"m{i}" for i in range(6)]),
        sent_ms=st.integers(0, 20),
        phone=st.sampled_from(PHONES),
        expires_ms=st.just(2**40),
    ),
    min_size=0,
    max_size=6,
    unique_by=lambda c: c.message_id,
)


@settings(max_examples=500, deadline=None)
@given(
    candidates_st,
    st.integers(0, 20),
    st.sampled_from([None, *PHONES]),
    st.randoms(use_true_random=False),
)
def test_rule_is_a_function_of_the_candidate_set(
    candidates: list[Candidate], at: int, phone: str | None, rnd: random.Random
) -> None:
    """Any order of the candidates gives the same answer, and it is the documented one:
    a recipient match when there is one, the latest sent not after the receipt, else the
    earliest; None only without candidates."""
    chosen = route(at, phone, candidates)
    shuffled = list(candidates)
    rnd.shuffle(shuffled)
    assert route(at, phone, shuffled) == chosen
    if not candidates:
        assert chosen is None
        return
    pick = next(c for c in candidates if c.message_id == chosen)
    pool = [c for c in candidates if c.phone == phone] or candidates
    assert pick in pool
    if pick.sent_ms <= at:
        assert not [c for c in pool if pick.sent_ms < c.sent_ms <= at]
    else:
        assert all(c.sent_ms > at for c in pool)
        assert pick.sent_ms == min(c.sent_ms for c in pool)


# --- the rule through the real Redis: arrival order never matters -------------------------------


def writer() -> SyncRedis:
    """A synchronous client for the store (it writes from a worker thread)."""
    return redis_client.sync_client(REDIS_URL)


@pytest.fixture(scope="module")
async def redis() -> AsyncIterator[Redis]:
    """A bytes-returning client of the test Redis."""
    client = redis_client.async_client(REDIS_URL)
    yield client
    await client.aclose()


def accepted(mid: str, pid: str, sent: int, phone: str) -> EventRecord:
    """An acceptance of ``mid`` with SMPP id ``pid``."""
    return EventRecord(
        eventId=str(uuid.uuid5(uuid.NAMESPACE_OID, mid)),
        messageId=mid,
        status=Status.PROVIDER_ACCEPTANCE,
        occurredAt=NOW - 100_000 + sent * 1000,
        receivedAt=NOW,
        channel=Channel.SMS,
        phoneNumber=phone,
        sms=SmsInfo(segments=1),
        provider=ProviderInfo(name="smpp", id=pid, status="accepted", code="0"),
    )


def by_provider_id(pid: str, n: int, status: Status, at: int, phone: str | None) -> EventRecord:
    """A receipt naming its message only by provider id."""
    return EventRecord(
        eventId=str(uuid.uuid5(uuid.NAMESPACE_OID, f"{pid}/{n}")),
        status=status,
        occurredAt=NOW - 100_000 + at * 1000,
        receivedAt=NOW,
        phoneNumber=phone,
        provider=ProviderInfo(name="smpp", id=pid, status=status.value.lower(), code=str(n)),
    )


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
async def test_projection_of_reused_ids_is_independent_of_arrival_order(
    redis: Redis, data: st.DataObject
) -> None:
    """Up to three messages sharing one provider id and up to five receipts, applied in two
    random orders and batchings: identical projections, and each receipt in the message the
    rule gives it (and in no other)."""
    pid = uuid.uuid4().hex
    n_msgs = data.draw(st.integers(1, 3))
    msgs = [
        (str(uuid.uuid4()), data.draw(st.integers(0, 20)), data.draw(st.sampled_from(PHONES)))
        for _ in range(n_msgs)
    ]
    receipts = [
        by_provider_id(
            pid,
            n,
            data.draw(st.sampled_from([Status.SENT, Status.DELIVERED, Status.UNDELIVERED])),
            data.draw(st.integers(0, 20)),
            data.draw(st.sampled_from([None, *PHONES])),
        )
        for n in range(data.draw(st.integers(1, 5)))
    ]
    events = [accepted(mid, pid, sent, phone) for mid, sent, phone in msgs] + receipts
    generations = []
    for _ in range(2):
        rnd = data.draw(st.randoms(use_true_random=False))
        order = list(events)
        rnd.shuffle(order)
        gen = f"ri{uuid.uuid4().hex[:8]}"
        store = ProjectionStore(writer(), gen, 90 * DAY)
        cuts = sorted(rnd.sample(range(len(order) + 1), k=2))
        for part in (order[: cuts[0]], order[cuts[0] : cuts[1]], order[cuts[1] :]):
            if part:
                await store.apply(part)
        generations.append(gen)
    assert await snapshot(redis, generations[0]) == await snapshot(redis, generations[1])

    candidates = [
        Candidate(mid, NOW - 100_000 + sent * 1000, phone, 2**47) for mid, sent, phone in msgs
    ]
    for receipt in receipts:
        target = route(receipt.occurred_ms, receipt.phone_number, candidates)
        key = event_key(receipt.event_id).encode()
        for mid, _, _ in msgs:
            raw = await redis.hget(Layout(generations[0]).message_key(mid), mid)
            assert raw is not None
            assert (key in raw) == (mid == target), (mid, target)
