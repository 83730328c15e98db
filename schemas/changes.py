"""The change log: one record per change of a message's current status (projector -> notifier).

Topic ``message-status.changes`` (:func:`changes_topic`: the event topic's name with
``.events`` replaced by ``.changes``, else ``<topic>.changes``), keyed by message id, so all
changes of one message keep their order on one partition (chosen as CRC-32 of the key modulo
the partition count by the publisher). Value: the JSON of :class:`ChangeRecord`. The
projector publishes them after the Redis writes of a batch succeeded and before it records
its position (at-least-once, so a record can repeat); the notifier consumes them
(docs/push.md; docs/design.md §5).

``sequence`` is a pure function of the status that holds the message (rank, tie order,
``occurredAt`` in ms), so it grows with every change of the current status, and a repeat or
a replay into a new generation yields the same number for the same status: the notifier
deduplicates on (message id, endpoint, sequence).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Literal

import orjson
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pydantic import BaseModel, ConfigDict, Field

from schemas.settings import CommonSettings
from schemas.status import RANK, TIE_ORDER, Status
from schemas.tenancy import DEFAULT_TENANT
from schemas.webhook_config import WebhookConfig

log = logging.getLogger(__name__)

SCHEMA_VERSION: Literal[1] = 1
MS_SPAN = 2**47
"""Epoch ms are below this (schemas.timefmt.MAX_MS); the sequence packs them under the rank."""

CHANGES_CONFIG = {"retention.ms": str(14 * 86_400_000), "cleanup.policy": "delete"}
"""Changes are derived (a replay writes them again); 14 days bound ``notifier recover``."""


def changes_topic(event_topic: str) -> str:
    """The change topic of an event topic: ``message-status.events`` -> ``...changes``."""
    if event_topic.endswith(".events"):
        return event_topic[: -len(".events")] + ".changes"
    return f"{event_topic}.changes"


def sequence_of(status: Status, changed_ms: int) -> int:
    """The order hint of a current status: ``(2 * rank + tie order) * 2**47 + occurredAt``.

    Follows the fold's precedence (docs/design.md §2), so a newer current status always has a
    larger number; stays below 2**51, an exact integer in JSON and JavaScript. Two statuses
    that differ only in provider words at the same millisecond share a number.
    """
    return (2 * RANK[status] + TIE_ORDER[status]) * MS_SPAN + changed_ms


class ChangeRecord(BaseModel):
    """One change of a message's current status, as kept in the change log.

    ``message`` is the read API's ``message`` object (seed "Body Response") after the change;
    ``webhook`` the acceptance's push endpoint, set on the records of the batch that applied
    the acceptance (later records of the message leave it out; the notifier keeps it);
    ``emittedAt`` epoch ms when the projector published it; ``tenant`` the message's tenant
    (left out for the default tenant, ``schemas.tenancy``): the notifier pushes the change only
    to subscriptions of that tenant (docs/push.md).
    """

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    schema_version: Literal[1] = Field(default=SCHEMA_VERSION, alias="schemaVersion")
    message_id: str = Field(alias="messageId")
    sequence: int = Field(ge=0)
    status: Status
    message: dict[str, Any]
    webhook: WebhookConfig | None = None
    emitted_ms: int = Field(alias="emittedAt", ge=0)
    tenant: str | None = None

    @property
    def tenant_name(self) -> str:
        """The message's tenant (the default one when the record names none)."""
        return self.tenant or DEFAULT_TENANT

    @property
    def service(self) -> str | None:
        """The message's ``reference.service``, which subscriptions can select on."""
        reference = self.message.get("reference") or {}
        service = reference.get("service")
        return service if isinstance(service, str) else None

    def to_json(self) -> bytes:
        """The record value (camelCase JSON, nulls left out); built by hand, as the projector
        writes one per change (pydantic's dump cost more than the rest of the publish)."""
        value: dict[str, Any] = {
            "schemaVersion": self.schema_version,
            "messageId": self.message_id,
            "sequence": self.sequence,
            "status": self.status.value,
            "message": self.message,
            "emittedAt": self.emitted_ms,
        }
        if self.webhook is not None:
            value["webhook"] = self.webhook.model_dump(mode="json")
        if self.tenant is not None:
            value["tenant"] = self.tenant
        return orjson.dumps(value)

    @classmethod
    def from_json(cls, raw: bytes) -> ChangeRecord:
        """Parse a record value; raises ``pydantic.ValidationError`` when it is not one."""
        return cls.model_validate_json(raw)


def now_ms() -> int:
    """Epoch milliseconds, UTC."""
    return int(time.time() * 1000)


async def ensure_changes_topic(settings: CommonSettings, timeout_s: float = 30.0) -> str:
    """Create the change topic of ``settings.topic`` when missing; returns its name.

    Same partition count as the event topic. Raises ``TimeoutError`` when Kafka does not
    answer in ``timeout_s`` seconds, ``aiokafka.errors.KafkaError`` when the client fails.
    """
    name = changes_topic(settings.topic)
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers, request_timeout_ms=10_000
    )
    async with asyncio.timeout(timeout_s):
        await admin.start()
        try:
            if name not in set(await admin.list_topics()):
                topic = NewTopic(
                    name=name,
                    num_partitions=settings.topic_partitions,
                    replication_factor=settings.topic_replication_factor,
                    topic_configs=CHANGES_CONFIG,
                )
                await admin.create_topics([topic])  # "already exists" from a racer is fine
                while name not in set(await admin.list_topics()):  # noqa: ASYNC110 - polls the broker
                    await asyncio.sleep(0.2)
                log.info("created topic %s", name)
        finally:
            await admin.close()
    return name
