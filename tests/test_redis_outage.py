"""Redis restarts: the projector rides them out and rebuilds what Redis lost from the log."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from prometheus_client import REGISTRY

from tests.factories import acceptance, receipt
from tests.support.ports import free_port
from tests.support.redis_server import LocalRedis
from tests.support.stack import Stack, new_stack


def total(name: str) -> float:
    """A counter's sum over all its label values."""
    return sum(s.value for m in REGISTRY.collect() for s in m.samples if s.name == name)


@pytest.fixture
async def own_redis() -> AsyncIterator[LocalRedis]:
    """A Redis of this test's own, without persistence."""
    server = LocalRedis(free_port())
    await asyncio.to_thread(server.start)
    yield server
    await asyncio.to_thread(server.stop)


@pytest.mark.slow
async def test_projector_survives_a_redis_restart_and_rebuilds_what_was_lost(
    own_redis: LocalRedis,
) -> None:
    """Redis restarts empty: the projector retries (msgstatus_projector_failing 1, retries
    counted), keeps running, and every message is readable again."""
    stack: Stack = new_stack(redis_url=own_redis.url)
    await stack.start()
    try:
        before = [str(uuid.uuid4()) for _ in range(20)]
        await stack.post(
            [
                e
                for m in before
                for e in (acceptance(m), receipt("DELIVERED", "2026-02-04T06:55:00Z", message_id=m))
            ]
        )
        for mid in before:
            await stack.wait_for_status(mid, "DELIVERED")

        retries = total("msgstatus_batch_retries_total")
        await asyncio.to_thread(own_redis.stop)
        seen_failing = False

        async def retrying() -> bool:  # the idle check (every 2 s) meets the stopped Redis
            nonlocal seen_failing
            seen_failing |= REGISTRY.get_sample_value("msgstatus_projector_failing") == 1.0
            return seen_failing and total("msgstatus_batch_retries_total") > retries

        await stack.wait_for(retrying, 30, "the projector to retry against the stopped Redis")
        await asyncio.to_thread(own_redis.start)

        after = [str(uuid.uuid4())]  # one message: most partitions stay idle (periodic check)
        for mid in after:  # a trickle, so the projector meets the empty Redis
            assert (
                await stack.post(
                    [acceptance(mid), receipt("SENT", "2026-02-04T06:54:40Z", message_id=mid)]
                )
            ).status == 202
        for mid in after:
            await stack.wait_for_status(mid, "SENT", timeout=30)
        for mid in before:  # lost with the restart, rebuilt from the log
            await stack.wait_for_status(mid, "DELIVERED", timeout=30)
        # The read API reconnects too: no 503 once Redis is back.
        replies = [await stack.get(f"/api/messagestatus/{m}") for m in before]
        assert {r.status for r in replies} == {200}
    finally:
        await stack.close()
