"""The rebuild marker: what the projector writes and what the API's readiness reads from it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from projector.rebuild import RebuildTracker
from query_api.progress import ProjectionProgress
from runtime import redis_client
from schemas import rebuild
from tests.support.stack import REDIS_URL


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    """A client of the shared test Redis (each test uses a generation of its own)."""
    client = redis_client.async_client(REDIS_URL)
    yield client
    await client.aclose()


def progress_of(redis: Redis, generation: str) -> ProjectionProgress:
    """The API's view of one generation."""
    return ProjectionProgress(redis, lambda: generation)


async def test_rebuild_is_not_ready_until_every_partition_reaches_its_target(redis: Redis) -> None:
    """Partitions marked at their start stay not-ready, with progress, until their end offset."""
    g = f"r{uuid.uuid4().hex[:8]}"
    tracker = RebuildTracker(redis, "topic-a", retry_max_s=1)
    api = progress_of(redis, g)
    assert await api.check()  # nothing known yet: a fresh deployment is ready

    await tracker.begin(g, {0: 100, 3: 40})
    assert not await api.check()
    assert api.detail()["projection"] == {
        "state": "rebuilding",
        "behind": 140,
        "partitions": {
            "topic-a:0": {"position": 0, "target": 100},
            "topic-a:3": {"position": 0, "target": 40},
        },
    }
    assert REGISTRY.get_sample_value("msgstatus_projection_rebuild_lag") == 140

    await tracker.advance(g, {0: 60, 3: 40, 5: 7})
    assert not await api.check()
    assert api.last["behind"] == 40
    await tracker.advance(g, {0: 100})
    assert await api.check()
    assert api.detail()["projection"] == {"state": "complete"}
    await redis.delete(rebuild.rebuild_key(g))


async def test_a_vanished_marker_is_a_lost_projection(redis: Redis) -> None:
    """A marker the API saw and that is gone (Redis restarted empty) reads as not ready."""
    g = f"r{uuid.uuid4().hex[:8]}"
    tracker = RebuildTracker(redis, "topic-b", retry_max_s=1)
    api = progress_of(redis, g)
    await tracker.keep_present(g)
    assert await api.check()
    await redis.delete(rebuild.rebuild_key(g))
    assert not await api.check()
    assert api.last["state"] == "lost"
    await tracker.keep_present(g)  # the projector writes it again once it has looked
    assert await api.check()
    await redis.delete(rebuild.rebuild_key(g))


async def test_a_new_owner_adopts_an_unfinished_rebuild(redis: Redis) -> None:
    """After a rebalance the next owner continues the rebuild, or clears it when already done."""
    g = f"r{uuid.uuid4().hex[:8]}"
    first = RebuildTracker(redis, "topic-c", retry_max_s=1)
    await first.begin(g, {1: 50, 2: 80})
    first.forget([1, 2])

    second = RebuildTracker(redis, "topic-c", retry_max_s=1)
    await second.adopt(g, {1: 50, 2: 10})  # partition 1 already reached its target
    assert second.targets == {2: 80}
    api = progress_of(redis, g)
    assert not await api.check()
    assert list(api.last["partitions"]) == ["topic-c:2"]
    await second.advance(g, {2: 80})
    assert await api.check()
    await redis.delete(rebuild.rebuild_key(g))
