"""The event log's topics: names, partitions and retention, created explicitly at start-up.

docs/pitfalls.md (aiokafka#486): a consumer that subscribed before its topic existed may never get
partitions, so every service creates its topics before it produces or subscribes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from schemas.audit import audit_topic
from schemas.settings import CommonSettings

log = logging.getLogger(__name__)

EVENT_LOG_CONFIG = {"retention.ms": "-1", "cleanup.policy": "delete"}
"""The event log is kept indefinitely: it is what replay reads (docs/design.md §5)."""


@contextlib.asynccontextmanager
async def _admin(settings: CommonSettings, timeout_s: float) -> AsyncIterator[AIOKafkaAdminClient]:
    """A started admin client, closed on exit; everything inside runs within ``timeout_s``."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers, request_timeout_ms=10_000
    )
    async with asyncio.timeout(timeout_s):
        await admin.start()
        try:
            yield admin
        finally:
            await admin.close()


async def partition_ids(settings: CommonSettings, timeout_s: float = 30.0) -> list[int]:
    """The partition ids of the event topic, as the cluster reports them; [] when it is missing.

    Raises ``TimeoutError`` when Kafka does not answer within ``timeout_s`` seconds and
    ``aiokafka.errors.KafkaError`` when the client fails.
    """
    async with _admin(settings, timeout_s) as admin:
        (described,) = await admin.describe_topics([settings.topic])
    return sorted(p["partition"] for p in described["partitions"])


def min_insync_replicas(replication_factor: int) -> int:
    """2 from three replicas up (a 2xx, acks=all, then means "on two brokers", and one broker
    may fail without stopping ingest), 1 below: a topic must stay writable with one broker
    down."""
    return 2 if replication_factor >= 3 else 1


def _kept_like_the_log(name: str, settings: CommonSettings) -> NewTopic:
    """A topic with the event log's partitions, replication and retention (forever)."""
    return NewTopic(
        name=name,
        num_partitions=settings.topic_partitions,
        replication_factor=settings.topic_replication_factor,
        topic_configs={
            **EVENT_LOG_CONFIG,
            "min.insync.replicas": str(min_insync_replicas(settings.topic_replication_factor)),
        },
    )


async def ensure_topics(settings: CommonSettings, timeout_s: float = 30.0) -> None:
    """Create the event topic and the dead-letter topic when missing.

    Raises ``TimeoutError`` when Kafka does not answer, or the topics do not appear, within
    ``timeout_s`` seconds; ``aiokafka.errors.KafkaError`` when the client fails.
    """
    async with _admin(settings, timeout_s) as admin:
        existing = set(await admin.list_topics())
        wanted = [
            _kept_like_the_log(name, settings)
            for name in (settings.topic, settings.dead_letter_topic)
            if name not in existing
        ]
        if wanted:
            # The response carries per-topic error codes; "already exists" from a racing
            # service is fine, so success is judged by the topics being listed afterwards.
            await admin.create_topics(wanted)
            names = {t.name for t in wanted}
            while not names <= set(await admin.list_topics()):  # noqa: ASYNC110 - polls the broker
                await asyncio.sleep(0.2)
            log.info("created topics %s", sorted(names))


async def ensure_audit_topic(settings: CommonSettings, timeout_s: float = 30.0) -> str:
    """Create the audit topic (``schemas.audit.audit_topic``) when missing; returns its name.

    Kept as long as the event log (:data:`EVENT_LOG_CONFIG`), with the event topic's
    partitions and replication. Raises ``TimeoutError`` when Kafka does not answer within
    ``timeout_s`` seconds; ``aiokafka.errors.KafkaError`` when the client fails.
    """
    name = audit_topic(settings.topic)
    async with _admin(settings, timeout_s) as admin:
        if name not in set(await admin.list_topics()):
            # "already exists" from a racing service is fine
            await admin.create_topics([_kept_like_the_log(name, settings)])
            while name not in set(await admin.list_topics()):  # noqa: ASYNC110 - polls the broker
                await asyncio.sleep(0.2)
            log.info("created topic %s", name)
    return name
