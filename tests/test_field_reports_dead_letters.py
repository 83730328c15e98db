"""Field report: a rebuild of the projection must not repeat its dead letters.

Through the real stack: a READ on an SMS message is dead-lettered once; then the projection
is lost (its Redis keys deleted, as a local Redis without persistence loses them across
``make run``s) and the projector restarted twice, so it rebuilds from the log each time.
The dead-letter topic still holds exactly one letter for that event.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from projector.positions import positions_key
from schemas import keys
from tests.factories import acceptance, receipt
from tests.support.kafka_util import read_all, topic_size
from tests.support.stack import Stack, new_stack


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    """A stack of its own: this test restarts its projector and deletes its projection."""
    s = new_stack()
    await s.start()
    yield s
    await s.close()


async def letters_of(stack: Stack, mid: str) -> list[str]:
    """The letter ids in the dead-letter topic for message ``mid``."""
    values = await read_all(stack.kafka, stack.topic + ".dlq", timeout_ms=1000)
    return [v.get("letterId", "?") for v in values if v.get("messageId") == mid]


async def caught_up(stack: Stack) -> bool:
    """True once the projection's recorded positions reach the end of the event topic (its
    dead letters are published before the positions are recorded: projector.batch)."""
    raw = await stack.redis.hgetall(positions_key(stack.generation))
    done = sum(int(v) for v in raw.values())
    return done >= await topic_size(stack.kafka, stack.topic)


async def lose_projection(stack: Stack) -> None:
    """Delete every key of the stack's generation (the projection is gone, the log is not)."""
    async for key in stack.redis.scan_iter(match=keys.generation_pattern(stack.generation)):
        await stack.redis.delete(key)


async def test_rebuilds_do_not_repeat_dead_letters(stack: Stack) -> None:
    """One READ-on-SMS event, three folds of the log: one dead letter."""
    mid = str(uuid.uuid4())
    reply = await stack.post(
        [acceptance(mid), receipt("READ", "2026-02-04T06:56:00Z", message_id=mid)]
    )
    assert reply.status == 202, reply.body

    async def one_letter() -> bool:
        return len(await letters_of(stack, mid)) == 1

    await stack.wait_for(one_letter, 30, "the READ to be dead-lettered")
    for _ in range(2):
        await stack.stop_projector()
        await lose_projection(stack)
        assert (await stack.get(f"/api/messagestatus/{mid}")).status == 404
        await stack.start_projector()
        await stack.wait_for_status(mid, "PROVIDER_ACCEPTANCE", timeout=60)
        await stack.wait_for(lambda: caught_up(stack), 60, "the rebuild to reach the log's end")
    assert len(await letters_of(stack, mid)) == 1, await letters_of(stack, mid)
