"""Replay rebuilds the projection from the log: exactly, atomically, without read gaps."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from projector import generations
from projector.replay import Replay
from projector.settings import ProjectorSettings
from schemas import keys
from tests.factories import acceptance, receipt
from tests.support.stack import REDIS_URL, Stack, new_stack
from tests.test_store_redis import snapshot

# A Redis database of this module's own: it flushes it and moves its generation pointer.
REPLAY_REDIS = REDIS_URL.rsplit("/", 1)[0] + "/3"


@pytest.fixture(scope="module")
async def live() -> AsyncIterator[Stack]:
    """A stack whose projector and API follow the served generation, in its own database."""
    s = new_stack(redis_url=REPLAY_REDIS, pinned=False)
    s.redis_url = REPLAY_REDIS
    from redis.asyncio import Redis  # noqa: PLC0415

    r = Redis.from_url(REPLAY_REDIS)
    await r.flushdb()
    await r.aclose()
    await s.start()
    yield s
    await s.close()


def replay_settings(stack: Stack) -> ProjectorSettings:
    """The projector settings a replay of this stack's log uses."""
    return ProjectorSettings(
        kafka_bootstrap_servers=stack.kafka,
        redis_url=stack.redis_url,
        topic=stack.topic,
        metrics_port=0,
    )


async def load(stack: Stack, n: int) -> list[str]:
    """Post n messages (acceptance, receipts, some by provider id before acceptance)."""
    ids = []
    batch: list[dict[str, Any]] = []
    for i in range(n):
        mid, pid = str(uuid.uuid4()), f"pid-{uuid.uuid4().hex[:12]}"
        ids.append(mid)
        phone = f"+4917{i % 7:03d}5550{i % 3}"
        batch.append(receipt("SENT", "2026-05-01T10:00:02Z", provider="P9", provider_id=pid))
        batch.append(
            acceptance(
                mid,
                at="2026-05-01T10:00:00Z",
                phone=phone,
                provider="P9",
                provider_id=pid,
                reference={"service": "S", "key": f"ref-{i % 5}"},
            )
        )
        batch.append(receipt("DELIVERED", f"2026-05-01T10:00:{10 + i % 40:02d}Z", message_id=mid))
    for start in range(0, len(batch), 300):
        assert (await stack.post(batch[start : start + 300])).status == 202
    for mid in ids:
        await stack.wait_for_status(mid, "DELIVERED", timeout=30)
    await stack.wait_for_history(ids[-1], 3)
    return ids


@pytest.mark.slow
async def test_replay_after_flush_restores_every_document_history_and_index(live: Stack) -> None:
    """FLUSHDB, replay: every message key, index and provider map is back, byte for byte."""
    ids = await load(live, 60)
    for mid in ids:  # every history complete (the SENT came via the parked path)
        await live.wait_for_history(mid, 3)
    served = await generations.served(live.redis)
    before = await snapshot(live.redis, served)
    assert len(before) > 60

    await live.stop_projector()
    await live.redis.flushdb()
    assert (await live.get(f"/api/messagestatus/{ids[0]}")).status == 404

    result = await Replay(replay_settings(live), grace_s=0.5).run()
    assert result.switched
    assert result.records >= 180
    after = await snapshot(live.redis, result.generation)
    assert after == before
    await asyncio.sleep(0.5)  # the API follows the pointer (polled every 0.2 s here)
    assert (await live.get(f"/api/messagestatus/{ids[0]}")).body["message"]["status"] == "DELIVERED"
    await live.start_projector()


@pytest.mark.slow
async def test_reads_during_a_replay_never_miss_a_message(live: Stack) -> None:
    """While a new generation is built and switched in, every existing message stays readable."""
    ids = await load(live, 40)
    misses: list[tuple[str, int]] = []
    stop = asyncio.Event()

    async def reader() -> None:
        while not stop.is_set():
            for mid in ids[::4]:
                reply = await live.get(f"/api/messagestatus/{mid}")
                if reply.status != 200:
                    misses.append((mid, reply.status))
            await asyncio.sleep(0)

    task = asyncio.create_task(reader())
    old = await generations.served(live.redis)
    result = await Replay(replay_settings(live), grace_s=1.0).run()
    # Events posted after the replay switched land in the new generation via the projector.
    late = str(uuid.uuid4())
    await live.post(acceptance(late))
    await live.wait_for_status(late, "PROVIDER_ACCEPTANCE")
    stop.set()
    await task
    assert misses == []
    assert await generations.served(live.redis) == result.generation != old
    leftovers = [k async for k in live.redis.scan_iter(match=keys.generation_pattern(old))]
    assert leftovers == []


async def test_in_place_replay_changes_nothing_when_the_projection_is_current(live: Stack) -> None:
    """--in-place over a complete projection is a no-op (the fold is idempotent)."""
    await load(live, 5)
    served = await generations.served(live.redis)
    before = await snapshot(live.redis, served)
    result = await Replay(replay_settings(live), in_place=True).run()
    assert not result.switched
    assert result.generation == served
    assert await snapshot(live.redis, served) == before


async def test_replay_since_a_time_reads_only_the_log_from_that_time(live: Stack) -> None:
    """--since starts each partition at the first record written at or after that time."""
    await load(live, 4)
    since_ms = int(time.time() * 1000)
    await asyncio.sleep(0.05)
    await load(live, 3)  # three events per message
    result = await Replay(replay_settings(live), since_ms=since_ms, in_place=True).run()
    assert result.records == 9
