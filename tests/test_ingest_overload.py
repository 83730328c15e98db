"""Overload is not an outage: past its bound the ingest sheds at once and loses nothing.

Through the real Kafka, projector and Redis: an ingest whose bound on events in flight is
small is driven far past it by concurrent batches.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from prometheus_client import REGISTRY

from ingest.admission import MIN_EVENT_BYTES, Admission, estimate_events
from ingest.http import ADMISSION
from schemas import problems
from tests.factories import acceptance
from tests.support.stack import Reply, Stack, new_stack

BOUND = 100
"""Events in flight the overloaded ingest admits."""
BODY_EVENTS = 10
CONNECTIONS = 48
ROUNDS = 4


def _total(name: str, **labels: str) -> float:
    """Sum of a counter's samples in this process (the services run in-process)."""
    total = 0.0
    for metric in REGISTRY.collect():
        for sample in metric.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


@pytest.fixture(scope="module")
async def bounded() -> AsyncIterator[Stack]:
    """A stack whose ingest admits at most ``BOUND`` events in flight."""
    s = new_stack()
    await s.start(max_events_in_flight=BOUND)
    yield s
    await s.close()


async def test_excess_is_shed_with_retry_after_and_every_accepted_event_is_readable(
    bounded: Stack,
) -> None:
    """Concurrent batches past the bound get fast 503s; no producer is replaced, no publish
    times out, and every event answered 202 is readable afterwards."""
    replaced = _total("msgstatus_producer_replacements_total")
    timeouts = _total("msgstatus_publish_failures_total", reason="timeout")
    shed_before = _total("msgstatus_requests_shed_total", source="events")

    async def post_one() -> tuple[Reply, list[str]]:
        ids = [str(uuid.uuid4()) for _ in range(BODY_EVENTS)]
        return await bounded.post([acceptance(i) for i in ids]), ids

    replies: list[tuple[Reply, list[str]]] = []
    for _ in range(ROUNDS):
        replies += await asyncio.gather(*(post_one() for _ in range(CONNECTIONS)))

    accepted = [ids for reply, ids in replies if reply.status == 202]
    shed = [reply for reply, _ in replies if reply.status == 503]
    assert len(accepted) + len(shed) == len(replies), {r.status for r, _ in replies}
    assert accepted, "nothing was admitted"
    assert shed, "the bound was never reached: nothing to test"
    for reply in shed:
        assert reply.body["type"] == problems.OVERLOADED.uri, reply.body
        assert int(reply.headers["Retry-After"]) >= 1
    assert _total("msgstatus_requests_shed_total", source="events") - shed_before == len(shed)
    assert _total("msgstatus_producer_replacements_total") == replaced
    assert _total("msgstatus_publish_failures_total", reason="timeout") == timeouts

    # Every acknowledged event reached the log and so the projection; the last one posted
    # being readable is not enough, so each message is checked.
    for ids in accepted:
        for message_id in ids:
            await bounded.wait_for_status(message_id, "PROVIDER_ACCEPTANCE")


async def test_health_and_metrics_answer_while_webhooks_are_shed(bounded: Stack) -> None:
    """The probes and metrics are never shed, even with admission at its bound."""
    # Fill the bound by hand: the next webhook is shed before its body is read.
    admission = bounded.ingest_app()[ADMISSION]
    assert admission.enter(BOUND)
    try:
        reply = await bounded.post([acceptance(str(uuid.uuid4()))])
        assert reply.status == 503
        assert reply.body["type"] == problems.OVERLOADED.uri
        assert "x-request-id" in {name.lower() for name in reply.headers}
        for path in ("/healthz", "/readyz", "/metrics"):
            async with bounded.http.get(bounded.ingest_url + path) as resp:
                assert resp.status == 200, path
    finally:
        admission.leave(BOUND)
    after = await bounded.post([acceptance(str(uuid.uuid4()))])
    assert after.status == 202, after.body


def test_admission_admits_one_oversized_batch_when_idle() -> None:
    """A batch larger than the bound is admitted alone, so it can never be refused for ever."""
    admission = Admission(10)
    assert admission.enter(25)
    assert not admission.enter(1)
    admission.leave(25)
    assert admission.enter(4)
    assert admission.enter(6)
    assert not admission.enter(1)
    admission.resize(6, 2)  # the body held fewer events than its size suggested
    assert admission.enter(4)
    assert admission.in_flight == 10


def test_reservations_are_estimated_from_the_body_size_within_the_batch_cap() -> None:
    """A body reserves one event per 256 bytes, at least one, at most the batch cap."""
    assert estimate_events(None, 10_000) == 1
    assert estimate_events(100, 10_000) == 1
    assert estimate_events(33_000, 10_000) == 33_000 // MIN_EVENT_BYTES
    assert estimate_events(8 * 1024 * 1024, 10_000) == 10_000
