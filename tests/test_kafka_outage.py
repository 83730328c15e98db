"""Kafka down: ingest answers 503 in time, never 2xx, and the provider's retry lands once back."""

from __future__ import annotations

import asyncio
import pathlib
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from tests.factories import acceptance, receipt
from tests.support.kafka_broker import LocalKafkaBroker
from tests.support.stack import Stack, new_stack


@pytest.fixture
async def own_broker(tmp_path: pathlib.Path) -> AsyncIterator[LocalKafkaBroker]:
    """A broker of this test's own (ports 19092/19093) that it may stop and restart."""
    broker = LocalKafkaBroker(19092, 19093, tmp_path / "kafka")
    await asyncio.to_thread(broker.start)
    yield broker
    await asyncio.to_thread(broker.stop)


@pytest.mark.slow
async def test_webhook_during_kafka_outage_gets_503_and_its_retry_lands_once(
    own_broker: LocalKafkaBroker,
) -> None:
    """503 with Retry-After while Kafka is stopped; after restart the retry is visible, once."""
    stack: Stack = new_stack(own_broker.bootstrap)
    await stack.start()
    try:
        mid = str(uuid.uuid4())
        assert (await stack.post(acceptance(mid, at="2026-03-01T10:00:00Z"))).status == 202
        await stack.wait_for_status(mid, "PROVIDER_ACCEPTANCE", timeout=30)

        await asyncio.to_thread(own_broker.stop)
        delivered = receipt("DELIVERED", "2026-03-01T10:00:09Z", message_id=mid)
        started = time.monotonic()
        reply = await stack.post(delivered, webhook_id="retry-1")
        assert reply.status == 503, reply.body
        assert "Retry-After" in reply.headers
        assert time.monotonic() - started < 10, "503 must come within the produce deadline"
        again = await stack.post(delivered, webhook_id="retry-1")
        assert again.status == 503

        await asyncio.to_thread(own_broker.start)
        deadline = time.monotonic() + 60
        while True:  # the provider retries until it gets a 2xx
            reply = await stack.post(delivered, webhook_id="retry-1")
            if reply.status == 202 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        assert reply.status == 202, reply.body
        await stack.wait_for_status(mid, "DELIVERED", timeout=60)
        history = await stack.get(f"/api/messagestatus/{mid}/history")
        assert [e["status"] for e in history.body["events"]] == ["PROVIDER_ACCEPTANCE", "DELIVERED"]
    finally:
        await stack.close()
