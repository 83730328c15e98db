"""The read API's audit trail: records to the audit topic and the structured log, and
``msgstatus audit`` to list them (schemas.audit; docs/operations.md, "Tenants, keys and audit").

A read never waits for Kafka: :meth:`AuditLog.record` writes the log line at once and queues
the record, which a background task publishes (idempotent producer, acks=all), retrying
while Kafka is away. The queue is bounded (``audit_queue_max``); a record that does not fit
is counted in ``msgstatus_audit_dropped_total`` and still has its log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client import Counter

from runtime.topics import ensure_audit_topic
from schemas.audit import AuditRecord, audit_topic
from schemas.settings import CommonSettings

log = logging.getLogger("msgstatus.audit")

RECORDED = Counter("msgstatus_audit_records_total", "Audit records of reads", ["action"])
DROPPED = Counter(
    "msgstatus_audit_dropped_total", "Audit records not published: the queue was full"
)


class AuditLog:
    """Queues audit records and publishes them from a background task (:meth:`running`)."""

    def __init__(self, settings: CommonSettings, queue_max: int = 10_000) -> None:
        self.settings = settings
        self.topic = audit_topic(settings.topic)
        self._queue: asyncio.Queue[AuditRecord] = asyncio.Queue(queue_max)
        self._idle = asyncio.Event()
        self._idle.set()

    def record(self, entry: AuditRecord) -> None:
        """Log the record now and queue it for the topic (never blocks, never raises)."""
        RECORDED.labels(entry.action).inc()
        fields = entry.model_dump(by_alias=True, mode="json")
        log.info(
            "audit %s %s by %s (%s): %d results",
            entry.action,
            entry.subject,
            entry.key_id,
            entry.tenant,
            entry.results,
            extra={"audit": fields},
        )
        try:
            self._queue.put_nowait(entry)
            self._idle.clear()
        except asyncio.QueueFull:
            DROPPED.inc()
            log.error("audit queue full: record of %s not published", entry.key_id)

    async def drained(self, timeout_s: float) -> bool:
        """Wait until every queued record was published (at most ``timeout_s``)."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    @contextlib.asynccontextmanager
    async def running(self, shutdown_timeout_s: float = 5.0) -> AsyncIterator[None]:
        """Publish in the background while inside; on exit, flush what is queued (bounded)."""
        task = asyncio.create_task(self._publish(), name="audit-publisher")
        try:
            yield
        finally:
            if not self._queue.empty() and not await self.drained(shutdown_timeout_s):
                log.error("audit: %d records not published at shutdown", self._queue.qsize())
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _producer(self) -> AIOKafkaProducer:
        """A started producer, the topic created; retried until Kafka answers."""
        delay = 0.5
        while True:
            try:
                await ensure_audit_topic(self.settings)
            except (KafkaError, OSError, TimeoutError) as exc:
                log.warning("audit topic not reachable yet: %s", exc.__class__.__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            producer = AIOKafkaProducer(
                bootstrap_servers=self.settings.kafka_bootstrap_servers,
                acks="all",
                enable_idempotence=True,
                linger_ms=5,
            )
            try:
                await producer.start()
            except BaseException as exc:
                with contextlib.suppress(Exception):
                    await producer.stop()
                if not isinstance(exc, (KafkaError, OSError, TimeoutError)):
                    raise
                log.warning("audit producer not started: %s", exc.__class__.__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
            else:
                return producer

    async def _publish(self) -> None:
        # The producer starts with the first record: an API that audits nothing (no list
        # read yet) holds no Kafka connection.
        first = await self._queue.get()
        producer = await self._producer()
        try:
            batch = [first]
            while True:
                while not self._queue.empty() and len(batch) < 500:
                    batch.append(self._queue.get_nowait())
                await self._send(producer, batch)
                if self._queue.empty():
                    self._idle.set()
                batch = [await self._queue.get()]
        finally:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await producer.stop()

    async def _send(self, producer: AIOKafkaProducer, batch: list[AuditRecord]) -> None:
        delay = 0.2
        while True:
            try:
                futures = [
                    await producer.send(self.topic, r.to_json(), key=r.key_id.encode())
                    for r in batch
                ]
                await asyncio.gather(*futures)
            except KafkaError as exc:
                log.warning("audit publish failed, retrying: %s", exc.__class__.__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            else:
                return


async def list_audit(
    settings: CommonSettings, since_ms: int, key_id: str | None = None
) -> list[AuditRecord]:
    """The audit records from ``since_ms`` (epoch ms) to now, oldest first, optionally only
    those of one key id. Reads the topic from the offsets of that time to its current end."""
    topic = audit_topic(settings.topic)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    out: list[AuditRecord] = []
    try:
        parts = consumer.partitions_for_topic(topic)
        if not parts:
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        if not tps:
            return []
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        starts = await consumer.offsets_for_times(dict.fromkeys(tps, since_ms))
        pending = set()
        for tp in tps:
            found = starts.get(tp)
            if found is None or found.offset >= ends[tp]:
                continue
            consumer.seek(tp, found.offset)
            pending.add(tp)
        while pending:
            batch = await consumer.getmany(*pending, timeout_ms=1000, max_records=1000)
            for tp, records in batch.items():
                for r in records:
                    if r.offset >= ends[tp] or r.value is None:
                        continue
                    entry = AuditRecord.from_json(r.value)
                    if entry.at_ms >= since_ms and (key_id is None or entry.key_id == key_id):
                        out.append(entry)
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
    finally:
        await consumer.stop()
    return sorted(out, key=lambda e: (e.at_ms, e.key_id))
