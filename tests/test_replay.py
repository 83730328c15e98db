"""Replay rebuilds the projection from the log: exactly, atomically, without read gaps."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiokafka import TopicPartition
from prometheus_client import REGISTRY

from projector import generations
from projector.errors import GenerationError, ReplayRefused
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
@pytest.mark.parametrize("workers", [1, 2])
async def test_replay_after_flush_restores_every_document_history_and_index(
    live: Stack, workers: int
) -> None:
    """FLUSHDB, replay: every message key, index and provider map is back, byte for byte, with
    one process or with two folding disjoint partitions (--workers 2; the topic has 3)."""
    ids = await load(live, 60)
    for mid in ids:  # every history complete (the SENT came via the parked path)
        await live.wait_for_history(mid, 3)
    served = await generations.served(live.redis)
    before = await snapshot(live.redis, served)
    assert len(before) > 60

    await live.stop_projector()
    await live.redis.flushdb()
    assert (await live.get(f"/api/messagestatus/{ids[0]}")).status == 404

    result = await Replay(replay_settings(live), grace_s=0.5, workers=workers).run()
    assert result.switched
    assert result.records >= 180
    after = await snapshot(live.redis, result.generation)
    assert after == before
    assert REGISTRY.get_sample_value("msgstatus_replay_progress_ratio") == 1.0
    await live.wait_for_status(ids[0], "DELIVERED")  # the API follows the pointer (0.2 s here)
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
    since_ms = int(time.time() * 1000) + 1  # after every record written so far
    while time.time() * 1000 <= since_ms:  # noqa: ASYNC110 - before every later record
        await asyncio.sleep(0.001)
    await load(live, 3)  # three events per message
    result = await Replay(replay_settings(live), since_ms=since_ms, in_place=True).run()
    assert result.records == 9


class ReplayWithTraffic(Replay):
    """A replay during which messages are posted, and applied by the live projector, right
    after it took the log's end offsets: those events lie beyond what the replay reads, so
    only the live projector's writes into the announced generation can bring them there."""

    def __init__(self, stack: Stack, posted: list[str]) -> None:
        super().__init__(replay_settings(stack), grace_s=0.2)
        self.stack, self.posted = stack, posted

    async def _positions(
        self, consumer: Any
    ) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
        starts, ends = await super()._positions(consumer)
        mids = [str(uuid.uuid4()) for _ in range(10)]
        events: list[dict[str, Any]] = []
        for mid in mids:
            events += [
                acceptance(mid),
                receipt("DELIVERED", "2026-02-04T06:55:00Z", message_id=mid),
            ]
        assert (await self.stack.post(events)).status == 202
        for mid in mids:  # applied to the served generation (and the announced one)
            await self.stack.wait_for_status(mid, "DELIVERED")
        self.posted += mids
        return starts, ends


@pytest.mark.slow
async def test_events_posted_during_a_replay_are_in_the_new_generation(live: Stack) -> None:
    """The live projector writes each batch into the generation being built, so events that
    arrive after the replay took its end offsets are there when it switches."""
    await load(live, 5)
    posted: list[str] = []
    result = await ReplayWithTraffic(live, posted).run()
    assert result.switched
    assert len(posted) == 10
    assert await generations.served(live.redis) == result.generation
    for mid in posted:
        reply = await live.get(f"/api/messagestatus/{mid}")
        assert (reply.status, reply.body["message"]["status"]) == (200, "DELIVERED"), mid


class ReplayInterfered(Replay):
    """A replay that, once it has read the log, sees the world change before its switch."""

    def __init__(self, stack: Stack, interfere: Callable[[str, str], Awaitable[None]]) -> None:
        super().__init__(replay_settings(stack), grace_s=0.2)
        self.interfere = interfere

    async def _switch(self, redis: Any, old: str, target: str) -> None:
        await self.interfere(old, target)
        await super()._switch(redis, old, target)


async def test_replay_refuses_to_switch_when_its_announcement_lapsed(live: Stack) -> None:
    """A lapsed announcement (the live projector may have skipped the new generation): the
    replay refuses to switch and the served generation stays."""
    await load(live, 2)
    served = await generations.served(live.redis)

    async def lapse(_old: str, target: str) -> None:
        await live.redis.hset(generations.BUILDING_KEY, target, "1")  # deadline long past

    built: list[str] = []

    async def lapse_noted(old: str, target: str) -> None:
        built.append(target)
        await lapse(old, target)

    with pytest.raises(ReplayRefused):
        await ReplayInterfered(live, lapse_noted).run()
    assert await generations.served(live.redis) == served
    assert not await generations.still_building(live.redis, built[0])
    await generations.delete(live.redis, built[0])


async def test_replay_refuses_to_switch_when_the_served_generation_changed(live: Stack) -> None:
    """Another generation was switched in meanwhile: the replay does not switch over it."""
    await load(live, 2)
    served = await generations.served(live.redis)
    other = f"other{uuid.uuid4().hex[:8]}"
    built: list[str] = []

    async def switched_by_someone_else(old: str, target: str) -> None:
        built.append(target)
        await generations.switch(live.redis, old, other)

    try:
        with pytest.raises(GenerationError):
            await ReplayInterfered(live, switched_by_someone_else).run()
        assert await generations.served(live.redis) == other
        # No longer announced: the live projector stops writing into the refused generation.
        assert not await generations.still_building(live.redis, built[0])
    finally:
        await generations.switch(live.redis, other, served)
        await generations.delete(live.redis, built[0])
