"""Fault 5: Redis restarts with nothing on disk; the projector rebuilds, readiness tells so."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from tests.cluster.conftest import Deployment, Figures
from tests.cluster.processes import metric
from tests.cluster.workload import assert_exactly_once, assert_same_state, workload
from tests.support.ports import free_port
from tests.support.redis_server import LocalRedis

MESSAGES = 3000  # 9,000 events to fold again after the restart


@pytest.fixture
async def own_redis() -> AsyncIterator[LocalRedis]:
    """A Redis of this test's own, without persistence (the shared one must not restart)."""
    server = LocalRedis(free_port())
    await asyncio.to_thread(server.start)
    yield server
    await asyncio.to_thread(server.stop)


@pytest.mark.timeout(300)
async def test_redis_restart_is_rebuilt_and_readiness_says_so_meanwhile(
    deployment: Deployment, figures: Figures, own_redis: LocalRedis
) -> None:
    """/readyz is 503 with the rebuild's progress until every accepted message reads again."""
    d = deployment
    ingest, projector, api = (
        d.procs.service(c, c, redis_url=own_redis.url) for c in ("ingest", "projector", "api")
    )
    for service in (ingest, projector, api):
        service.start()
    for service in (ingest, projector, api):
        await service.wait_started(d.http)
    messages = workload(MESSAGES)
    sender = d.sender(ingest.url)
    await sender.backlog(messages[:-1])
    reader = d.reader(api.url)
    await reader.converge(messages[:-1])
    async with d.http.get(api.url + "/readyz") as resp:
        before = await resp.json()
        assert resp.status == 200, before
    assert before["projection"] == {"state": "complete"}

    await asyncio.to_thread(own_redis.stop)
    await asyncio.to_thread(own_redis.start)
    restarted_at = time.monotonic()
    fresh = asyncio.create_task(sender.send_message(messages[-1]))  # accepted right after

    states: list[str] = []
    max_lag = 0.0
    while True:
        assert time.monotonic() - restarted_at < 120, f"not ready again: {states[-5:]}"
        async with d.http.get(api.url + "/readyz") as resp:
            body = await resp.json()
            status = resp.status
        state = body.get("projection", {}).get("state", "?") if status == 503 else "complete"
        if not body["checks"]["redis"]:
            state = "redis-down"
        if not states or states[-1] != state:
            states.append(state)
        if state == "rebuilding":
            assert body["projection"]["behind"] > 0
            max_lag = max(max_lag, await metric(d.http, api, "msgstatus_projection_rebuild_lag"))
        if status == 200:
            break
        await asyncio.sleep(0.05)
    ready_after_s = time.monotonic() - restarted_at
    await fresh
    # The truth: ready means every message accepted before the restart reads again, at once.
    assert await reader.delivered(messages[:-1]) == []
    assert "rebuilding" in states, states
    assert max_lag > 0

    snapshot = await reader.converge(messages)
    assert_exactly_once(snapshot, messages)
    assert projector.running()
    clean = await d.clean_pass(messages)
    assert_same_state(snapshot, clean)
    figures.state(
        messages=MESSAGES,
        events=3 * MESSAGES,
        redis_restarts=1,
        readyz_states=" -> ".join(states),
        readyz_503_for_s=round(ready_after_s, 1),
        max_rebuild_lag_metric=int(max_lag),
        projector_restarts=projector.starts - 1,
    )
