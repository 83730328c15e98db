"""Publishing to the event log: acks=all, idempotent, every send bounded by a deadline.

docs/pitfalls.md: a send can hang while Kafka is down (aiokafka#1101, #517), and an idempotent
producer can stay stuck after a broker blip (aiokafka#1017). So each publish has its own
deadline (the caller answers 503 in time), and a producer that failed is replaced in the
background by a fresh one, which takes over once it has reached the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter as Tally
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from prometheus_client import Counter

from ingest.errors import LogUnavailable
from ingest.settings import IngestSettings
from runtime.topics import ensure_topics
from schemas.events import EventRecord, record_key

log = logging.getLogger(__name__)

PUBLISHED = Counter("msgstatus_events_published_total", "Events acknowledged by Kafka", ["source"])
PUBLISH_FAILURES = Counter("msgstatus_publish_failures_total", "Publishes answered 503", ["reason"])


class Publisher:
    """Owns the Kafka producer of the ingest service.

    Lifecycle: :meth:`start` (returns at once; connecting goes on in the background while
    :attr:`ready` is False), :meth:`publish`, :meth:`stop` (flushes, bounded).
    """

    def __init__(self, settings: IngestSettings) -> None:
        self._settings = settings
        self._producer: AIOKafkaProducer | None = None
        self._connector: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def ready(self) -> bool:
        """True when a started producer is in place and no replacement is under way."""
        return self._producer is not None and self._connector is None

    def _new_producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=self._settings.kafka_bootstrap_servers,
            acks="all",
            enable_idempotence=True,
            linger_ms=self._settings.linger_ms,
            request_timeout_ms=max(1000, int(self._settings.produce_timeout_s * 1000)),
            compression_type=None,
        )

    async def start(self) -> None:
        """Begin connecting (topics are created first); never raises for an unreachable Kafka."""
        self._connector = asyncio.create_task(self._connect(), name="kafka-connect")

    async def _connect(self) -> None:
        delay = 0.2
        topics_ready = False
        while not self._stopping:
            producer = self._new_producer()
            try:
                if not topics_ready:
                    await ensure_topics(self._settings, timeout_s=10)
                    topics_ready = True
                async with asyncio.timeout(10):
                    await producer.start()
            except (KafkaError, TimeoutError, OSError) as exc:
                log.warning("kafka not reachable yet: %s", exc.__class__.__name__)
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(2):
                        await producer.stop()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            old, self._producer = self._producer, producer
            self._connector = None
            log.info("kafka producer connected")
            if old is not None:
                await self._close(old)
            return

    def _replace(self, reason: str) -> None:
        if self._connector is None and not self._stopping:
            log.warning("replacing kafka producer after %s", reason)
            self._connector = asyncio.create_task(self._connect(), name="kafka-reconnect")

    async def publish(self, records: Sequence[EventRecord]) -> None:
        """Send records and wait until Kafka acknowledged every one (acks=all).

        Raises :class:`LogUnavailable` when no producer is connected, on any Kafka error, or
        when the acknowledgements do not arrive within ``produce_timeout_s`` seconds. Then
        the caller must not answer 2xx: some records may still reach the log, and the
        sender's retry is harmless because event ids are deterministic and the fold is
        idempotent.
        """
        producer = self._producer
        if producer is None or self._connector is not None:
            PUBLISH_FAILURES.labels("not_connected").inc()
            raise LogUnavailable("the event log is not reachable")
        topic = self._settings.topic
        try:
            async with asyncio.timeout(self._settings.produce_timeout_s):
                futures = [
                    await producer.send(topic, record.to_json(), key=record_key(record))
                    for record in records
                ]
                await asyncio.gather(*futures)
        except TimeoutError:
            PUBLISH_FAILURES.labels("timeout").inc()
            self._replace("a publish timeout")
            raise LogUnavailable("the event log did not acknowledge in time") from None
        except KafkaError as exc:
            PUBLISH_FAILURES.labels(exc.__class__.__name__).inc()
            self._replace(exc.__class__.__name__)
            raise LogUnavailable(
                f"the event log refused the events: {exc.__class__.__name__}"
            ) from None
        sources = Tally(r.source for r in records)
        for source, count in sources.items():
            PUBLISHED.labels(source).inc(count)

    async def _close(self, producer: AIOKafkaProducer) -> None:
        try:
            async with asyncio.timeout(self._settings.shutdown_timeout_s):
                await producer.stop()
        except (TimeoutError, KafkaError) as exc:
            log.warning("kafka producer did not stop cleanly: %s", exc.__class__.__name__)

    async def stop(self) -> None:
        """Flush and close the producer within ``shutdown_timeout_s`` seconds; never hangs."""
        self._stopping = True
        if self._connector is not None:
            self._connector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connector
        if self._producer is not None:
            await self._close(self._producer)
            self._producer = None
