"""Upgrading a deployment from projection format 1 to format 2 with no read downtime."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from projector import generations
from projector.replay import Replay
from schemas import keys
from schemas.layout import is_legacy, meta_key
from tests.factories import acceptance, receipt
from tests.support.stack import REDIS_URL, Stack, new_stack
from tests.test_replay import replay_settings

# A Redis database of this module's own: it moves its generation pointer.
UPGRADE_REDIS = REDIS_URL.rsplit("/", 1)[0] + "/4"


@pytest.fixture(scope="module")
async def old_deployment() -> AsyncIterator[Stack]:
    """A stack following the pointer in a database where an earlier release projected into
    generation 0 (format 1): its recorded positions are there, the pointer was never set."""
    s = new_stack(redis_url=UPGRADE_REDIS, pinned=False)
    s.redis_url = UPGRADE_REDIS
    r = Redis.from_url(UPGRADE_REDIS)
    await r.flushdb()
    await r.hset(keys.positions_key("0"), f"{s.topic}:0", 0)
    await r.aclose()
    await s.start()
    yield s
    await s.close()


@pytest.mark.slow
async def test_replay_moves_a_format_1_deployment_to_format_2_without_a_failed_read(
    old_deployment: Stack,
) -> None:
    """Old format running; replay into a new generation; switch: reads never fail, and the
    served generation is format 2 afterwards."""
    live = old_deployment
    assert await generations.served(live.redis) == "0"
    ids = [str(uuid.uuid4()) for _ in range(30)]
    events = [acceptance(mid, at="2026-05-01T10:00:00Z") for mid in ids]
    events += [receipt("DELIVERED", "2026-05-01T10:00:09Z", message_id=mid) for mid in ids]
    assert (await live.post(events)).status == 202
    for mid in ids:
        await live.wait_for_status(mid, "DELIVERED", timeout=30)
    assert await live.redis.exists(keys.message_key("0", ids[0])) == 1  # format 1 keys

    misses: list[tuple[str, int]] = []
    stop = asyncio.Event()

    async def reader() -> None:
        while not stop.is_set():
            for mid in ids[::3]:
                reply = await live.get(f"/api/messagestatus/{mid}")
                if reply.status != 200 or reply.body["message"]["status"] != "DELIVERED":
                    misses.append((mid, reply.status))
            await asyncio.sleep(0)

    task = asyncio.create_task(reader())
    result = await Replay(replay_settings(live), grace_s=1.0).run()
    late = str(uuid.uuid4())
    await live.post(acceptance(late))
    await live.wait_for_status(late, "PROVIDER_ACCEPTANCE")
    stop.set()
    await task
    assert misses == []
    served = await generations.served(live.redis)
    assert served == result.generation
    assert not is_legacy(served)
    assert await live.redis.hget(meta_key(served), "format") == b"2"
    assert [k async for k in live.redis.scan_iter(match=keys.generation_pattern("0"))] == []
