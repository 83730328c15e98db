"""The event log's topics: created by the services themselves, kept forever, N partitions."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from projector.runner import Projector
from projector.settings import ProjectorSettings
from tests.support.stack import KAFKA, new_stack


async def describe(topics: list[str]) -> dict[str, tuple[int, dict[str, Any]]]:
    """Partition count and configuration of each topic, as the broker reports them."""
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await admin.start()
    try:
        out: dict[str, tuple[int, dict[str, Any]]] = {}
        meta = await admin.describe_topics(topics)
        counts = {t["topic"]: len(t["partitions"]) for t in meta}
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, t) for t in topics]
        )
        for response in responses:
            for resource in response.resources:
                name, entries = resource[3], resource[4]
                out[name] = (counts[name], {e[0]: e[1] for e in entries})
        return out
    finally:
        await admin.close()


async def topic_names() -> set[str]:
    """The topics the broker has."""
    consumer = AIOKafkaConsumer(bootstrap_servers=KAFKA)
    await consumer.start()
    try:
        return set(await consumer.topics())
    finally:
        await consumer.stop()


def assert_event_log(found: tuple[int, dict[str, Any]], partitions: int) -> None:
    """The topic has ``partitions`` partitions and keeps its records forever."""
    count, config = found
    assert count == partitions
    assert config["retention.ms"] == "-1"
    assert config["cleanup.policy"] == "delete"


async def test_ingest_creates_the_log_and_dead_letter_topics_kept_forever() -> None:
    """Ingest on a fresh topic name creates it and `<topic>.dlq` with TOPIC_PARTITIONS
    partitions and retention.ms=-1 (the broker auto-creates nothing here)."""
    stack = new_stack()
    assert stack.topic not in await topic_names()
    await stack.start(projector=False)  # ingest; the stack's settings ask for 3 partitions
    try:
        found = await describe([stack.topic, stack.topic + ".dlq"])
        assert_event_log(found[stack.topic], 3)
        assert_event_log(found[stack.topic + ".dlq"], 3)
    finally:
        await stack.close()


async def test_projector_creates_its_topics_before_it_subscribes() -> None:
    """A projector started first, on a topic nobody created, creates the topics itself (a
    consumer subscribed to a missing topic may never get partitions)."""
    topic = f"test-topics-{time.time_ns()}"
    projector = Projector(
        ProjectorSettings(
            kafka_bootstrap_servers=KAFKA, topic=topic, topic_partitions=5, metrics_port=0
        )
    )
    task = asyncio.create_task(projector.run())
    try:
        deadline = time.monotonic() + 30
        while topic + ".dlq" not in await topic_names():
            assert not task.done(), task
            assert time.monotonic() < deadline, "the projector did not create its topics"
            await asyncio.sleep(0.1)
        found = await describe([topic, topic + ".dlq"])
        assert_event_log(found[topic], 5)
        assert_event_log(found[topic + ".dlq"], 5)
    finally:
        projector.stop()
        await asyncio.wait_for(task, 30)
