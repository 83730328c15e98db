"""Errors a retry cannot cure stop the projector before it commits, and say so."""

from __future__ import annotations

import asyncio
import uuid

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import REGISTRY

from projector.batch import until_done
from projector.errors import AheadOfLog, CorruptState
from projector.positions import positions_key
from schemas.layout import Layout
from tests.factories import acceptance, receipt
from tests.support.stack import Stack, new_stack


async def committed(stack: Stack) -> dict[int, int]:
    """The projector group's committed offset per partition (0 when none)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=stack.kafka, group_id=f"test-{stack.topic}", enable_auto_commit=False
    )
    await consumer.start()
    try:
        return {p: await consumer.committed(TopicPartition(stack.topic, p)) or 0 for p in range(3)}
    finally:
        await consumer.stop()


async def where(stack: Stack, message_id: str, status: str) -> tuple[int, int]:
    """Partition and offset of the message's record of ``status`` in the log."""
    consumer = AIOKafkaConsumer(
        stack.topic, bootstrap_servers=stack.kafka, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        while batch := await consumer.getmany(timeout_ms=1000):
            for records in batch.values():
                for r in records:
                    value = orjson.loads(r.value)
                    if value.get("messageId") == message_id and value["status"] == status:
                        return r.partition, r.offset
        raise AssertionError(f"no {status} record of {message_id} in the log")
    finally:
        await consumer.stop()


async def test_a_corrupt_stored_value_stops_the_projector_before_it_commits() -> None:
    """A message whose stored value cannot be decoded: the projector stops with CorruptState,
    without committing the record."""
    stack = new_stack()
    await stack.start()
    try:
        mid = str(uuid.uuid4())
        assert (await stack.post(acceptance(mid))).status == 202
        await stack.wait_for_status(mid, "PROVIDER_ACCEPTANCE")
        await stack.wait_caught_up()
        await stack.redis.hset(Layout(stack.generation).message_key(mid), mid, b"\xffnot a state")
        receipt_ = receipt("DELIVERED", "2026-02-04T06:55:00Z", message_id=mid)
        assert (await stack.post(receipt_)).status == 202
        task = stack._projector_task
        assert task is not None
        with pytest.raises(CorruptState):
            await asyncio.wait_for(asyncio.shield(task), 30)
        partition, offset = await where(stack, mid, "DELIVERED")
        assert (await committed(stack))[partition] <= offset  # never committed past it
    finally:
        stack._projector = stack._projector_task = None  # it stopped by itself
        await stack.close()


async def test_an_error_a_retry_cannot_cure_sets_the_failing_metric() -> None:
    """msgstatus_projector_failing is 1 when a step fails for good (checked in the same task,
    before any other in-process projector can reset the process-wide gauge)."""

    async def corrupt() -> None:
        raise CorruptState("message m: not a state")

    with pytest.raises(CorruptState):
        await until_done(corrupt, 0.1)
    assert REGISTRY.get_sample_value("msgstatus_projector_failing") == 1.0


async def test_a_projection_ahead_of_the_log_is_refused() -> None:
    """Positions past the end of the log (the topic was recreated): AheadOfLog, no writes."""
    stack = new_stack()
    await stack.start(projector=False)
    try:
        await stack.redis.hset(positions_key(stack.generation), f"{stack.topic}:0", "1000000")
        await stack.start_projector()
        task = stack._projector_task
        assert task is not None
        with pytest.raises(AheadOfLog):
            await asyncio.wait_for(asyncio.shield(task), 30)
    finally:
        stack._projector = stack._projector_task = None
        await stack.close()
