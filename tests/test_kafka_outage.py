"""Kafka down: ingest answers 503 in time, never 2xx, says so on /readyz and in its metrics,
and the provider's retry lands as one event once Kafka is back."""

from __future__ import annotations

import asyncio
import pathlib
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from prometheus_client import REGISTRY

from tests.factories import acceptance, receipt
from tests.support.kafka_broker import LocalKafkaBroker
from tests.support.kafka_util import read_all
from tests.support.ports import free_port
from tests.support.stack import Stack, new_stack


@pytest.fixture
async def own_broker(tmp_path: pathlib.Path) -> AsyncIterator[LocalKafkaBroker]:
    """A broker of this test's own (free ports) that it may stop and restart."""
    broker = LocalKafkaBroker(free_port(), free_port(), tmp_path / "kafka")
    await asyncio.to_thread(broker.start)
    yield broker
    await asyncio.to_thread(broker.stop)


def counted(name: str, **labels: str) -> float:
    """The current value of a counter sample of this process (0 before its first event)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def total(name: str) -> float:
    """The sum of a counter over all its label values."""
    return sum(s.value for m in REGISTRY.collect() for s in m.samples if s.name == name)


async def readiness(stack: Stack) -> tuple[int, object]:
    """Ingest's /readyz: status and body."""
    async with stack.http.get(stack.ingest_url + "/readyz") as resp:
        return resp.status, await resp.json()


@pytest.mark.slow
async def test_webhook_during_kafka_outage_gets_503_and_its_retry_lands_once(
    own_broker: LocalKafkaBroker,
) -> None:
    """503 with Retry-After while Kafka is stopped, /readyz 503 naming kafka, the failures
    counted; after the restart the retry is in the log as one event (however many copies
    the log holds) and the message shows it once."""
    stack: Stack = new_stack(own_broker.bootstrap)
    await stack.start()
    try:
        mid = str(uuid.uuid4())
        assert (await stack.post(acceptance(mid, at="2026-03-01T10:00:00Z"))).status == 202
        await stack.wait_for_status(mid, "PROVIDER_ACCEPTANCE", timeout=30)
        assert (await readiness(stack))[0] == 200

        await asyncio.to_thread(own_broker.stop)
        failures = total("msgstatus_publish_failures_total")
        unavailable = counted("msgstatus_webhooks_total", source="events", outcome="unavailable")
        delivered = receipt("DELIVERED", "2026-03-01T10:00:09Z", message_id=mid)
        started = time.monotonic()
        reply = await stack.post(delivered, webhook_id="retry-1")
        assert reply.status == 503, reply.body
        assert "Retry-After" in reply.headers
        assert time.monotonic() - started < 10, "503 must come within the produce deadline"
        again = await stack.post(delivered, webhook_id="retry-1")
        assert again.status == 503
        assert await readiness(stack) == (
            503,
            {"status": "unavailable", "checks": {"kafka": False}},
        )
        assert (
            counted("msgstatus_webhooks_total", source="events", outcome="unavailable")
            == unavailable + 2
        )
        assert total("msgstatus_publish_failures_total") >= failures + 2

        await asyncio.to_thread(own_broker.start)
        deadline = time.monotonic() + 60
        while True:  # the provider retries until it gets a 2xx
            reply = await stack.post(delivered, webhook_id="retry-1")
            if reply.status == 202 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        assert reply.status == 202, reply.body
        await stack.wait_for_status(mid, "DELIVERED", timeout=60)
        assert (await readiness(stack))[0] == 200
        logged = [
            r
            for r in await read_all(stack.kafka, stack.topic, timeout_ms=1000)
            if r.get("messageId") == mid and r["status"] == "DELIVERED"
        ]
        assert logged, "the retry is not in the log"
        assert {r["eventId"] for r in logged} == set(reply.body["eventIds"])
        await stack.wait_caught_up(timeout=30)
        history = await stack.get(f"/api/messagestatus/{mid}/history")
        assert [e["status"] for e in history.body["events"]] == ["PROVIDER_ACCEPTANCE", "DELIVERED"]
    finally:
        await stack.close()
