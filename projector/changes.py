"""The projector's side of push: which messages a batch may have changed, published as records
of the change log (schemas.changes) before the batch's position is recorded.

This module is the whole seam between the projection and the notifier: the store reports the
states it folded (:func:`detect` turns them into change records) and :func:`batch.process`
hands them to :class:`ChangePublisher` after the Redis writes succeeded, so a crash before
the publish is healed by the redelivered batch (docs/design.md §5; docs/push.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections.abc import Mapping, Sequence

from aiokafka import AIOKafkaProducer
from prometheus_client import Counter

from projector import fold
from projector.logdecode import Event
from schemas.changes import ChangeRecord, ensure_changes_topic, now_ms, sequence_of
from schemas.documents import MessageView, message_object
from schemas.settings import CommonSettings
from schemas.status import Status
from schemas.stored import MessageState, event_key
from schemas.tenancy import DEFAULT_TENANT
from schemas.webhook_config import WebhookConfig

PUBLISHED = Counter("msgstatus_changes_published_total", "Status-change records published")


def detect(
    groups: Mapping[str, Sequence[Event]],
    states: Mapping[str, MessageState],
    views: Mapping[str, MessageView] | None = None,
) -> list[ChangeRecord]:
    """Change records of the messages whose current status this batch may have set.

    A message counts when the batch holds the event that now holds its status, or its
    acceptance (the message became visible); a message still at PROVIDER_ACCEPTANCE only
    when its acceptance names a webhook (the notifier must learn it; nothing is pushed).
    That is every real change, and it is decided from the batch itself, not from whether the
    compare-and-set wrote: a batch applied again after a crash emits its changes again (the
    notifier drops the repeats by sequence).
    ``states`` are the states after the fold (only messages that are kept: not expired);
    ``views``: the views the caller rendered already (``fold.view``); the others are
    computed here, only for the messages the batch has events of.
    """
    emitted = now_ms()
    out: list[ChangeRecord] = []
    for message_id, state in states.items():
        events = groups.get(message_id, ())
        if not events:
            continue
        view = views.get(message_id) if views is not None else None
        if view is None:
            view = fold.view(message_id, state)
        if view is None:
            continue
        accepted_here = any(e.status is Status.PROVIDER_ACCEPTANCE for e in events)
        if not accepted_here:
            visible = state.visible_entries()
            holder = max(visible, key=fold.holder_key) if visible else None
            if holder is None or holder.event_key not in {event_key(e.event_id) for e in events}:
                continue
        webhook = _webhook(events, state) if accepted_here else None
        if view.status is Status.PROVIDER_ACCEPTANCE and webhook is None:
            continue  # never pushed; only a webhook to remember makes it worth a record
        tenant = _tenant(events)
        # Built from values the fold and the event model validated already.
        out.append(
            ChangeRecord.model_construct(
                message_id=message_id,
                sequence=sequence_of(view.status, view.changed_ms),
                status=view.status,
                message=message_object(view),
                webhook=webhook,
                emitted_ms=emitted,
                tenant=None if tenant == DEFAULT_TENANT else tenant,
            )
        )
    return out


def _tenant(events: Sequence[Event]) -> str:
    """The tenant of a message's events in the batch: its acceptance's, else the first's (the
    notifier sends a change only to endpoints of this tenant; docs/push.md)."""
    for e in events:
        if e.status is Status.PROVIDER_ACCEPTANCE:
            return e.tenant
    return events[0].tenant


def _webhook(events: Sequence[Event], state: MessageState) -> WebhookConfig | None:
    """The webhook of the batch's acceptance that won (never a losing duplicate's)."""
    winners = [
        e
        for e in events
        if e.status is Status.PROVIDER_ACCEPTANCE
        and e.webhook is not None
        and fold.acceptance_of(e) == state.acceptance
    ]
    return min(winners, key=lambda e: e.event_id).webhook if winners else None


class ChangePublisher:
    """Publishes change records with an idempotent producer (acks=all) of its own.

    :meth:`publish` returns once Kafka acknowledged every record; it raises
    ``aiokafka.errors.KafkaError`` (the batch is then not recorded, and applied again).
    """

    def __init__(self, producer: AIOKafkaProducer, topic: str, partitions: int) -> None:
        self.producer = producer
        self.topic = topic
        self.partitions = partitions

    @classmethod
    async def open(cls, settings: CommonSettings) -> ChangePublisher:
        """Create the change topic when missing and start a producer for it."""
        topic = await ensure_changes_topic(settings)
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            acks="all",
            enable_idempotence=True,
            linger_ms=2,
        )
        await producer.start()
        try:
            partitions = len(await producer.partitions_for(topic))
        except BaseException:
            await producer.stop()
            raise
        return cls(producer, topic, partitions)

    async def publish(self, changes: Sequence[ChangeRecord]) -> None:
        """Send the records, keyed by message id, and wait for Kafka's acknowledgement."""
        if not changes:
            return
        futures = []
        for c in changes:
            key = c.message_id.encode()
            # The partition is chosen here (CRC-32, in C) rather than by the client's pure-
            # Python murmur2: only "one message, one partition" matters, and that holds.
            partition = zlib.crc32(key) % self.partitions
            futures.append(
                await self.producer.send(self.topic, c.to_json(), key=key, partition=partition)
            )
        await asyncio.gather(*futures)
        PUBLISHED.inc(len(changes))

    async def close(self, timeout_s: float = 10.0) -> None:
        """Flush and stop the producer (bounded: a stop must never hang)."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout(timeout_s):
                await self.producer.stop()
