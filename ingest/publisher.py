"""Publishing to the event log: acks=all, idempotent, every send bounded by a deadline.

docs/pitfalls.md: a send can hang while Kafka is down (aiokafka#1101, #517), and an idempotent
producer can stay stuck after a broker blip (aiokafka#1017). So each publish has its own
deadline (the caller answers 503 in time), and a producer that is broken is replaced in the
background by a fresh one, which takes over once it has reached the broker.

A producer is broken when its connection or its idempotent-producer state is (the aiokafka
errors in :data:`BROKEN`), or when a publish times out and nothing at all was acknowledged
during the whole timeout. A timeout while other publishes are still being acknowledged is
load, not an outage: replacing the producer then would abandon every request in flight and
turn a burst into an outage (the admission bound in :mod:`ingest.admission` keeps such
timeouts from happening in the first place).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
from collections import Counter as Tally
from collections.abc import Sequence
from typing import Any, NamedTuple

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    IllegalStateError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    NodeNotReadyError,
    OutOfOrderSequenceNumber,
    ProducerClosed,
    ProducerFenced,
    RequestTimedOutError,
    UnknownProducerId,
)
from aiokafka.partitioner import murmur2
from prometheus_client import Counter

from ingest.errors import LogUnavailable
from ingest.settings import IngestSettings
from runtime.topics import ensure_topics
from schemas.events import EventRecord, record_key

log = logging.getLogger(__name__)

PUBLISHED = Counter("msgstatus_events_published_total", "Events acknowledged by Kafka", ["source"])
PUBLISH_FAILURES = Counter("msgstatus_publish_failures_total", "Publishes answered 503", ["reason"])
REPLACEMENTS = Counter(
    "msgstatus_producer_replacements_total",
    "Kafka producers replaced because they were broken",
    ["reason"],
)

STEP = 16
"""Records handed to the producer between two returns to the event loop."""

BROKEN: tuple[type[KafkaError], ...] = (
    KafkaConnectionError,
    NodeNotReadyError,
    ProducerClosed,
    ProducerFenced,
    OutOfOrderSequenceNumber,
    UnknownProducerId,
    IllegalStateError,
)
"""Errors that say the producer itself cannot go on: its connection is gone, or its
idempotent-producer state is out of step with the broker (aiokafka#1017)."""

TIMEOUTS: tuple[type[Exception], ...] = (TimeoutError, KafkaTimeoutError, RequestTimedOutError)
"""Errors that say only that acknowledgements were late: load or an outage, told apart by
whether anything else was acknowledged meanwhile."""


@functools.cache
def _published(source: str) -> Any:
    """``PUBLISHED.labels(source)``, looked up once per source."""
    return PUBLISHED.labels(source)


class WireRecord(NamedTuple):
    """A log record as published: its Kafka key and value, and what the answer and the
    metrics need. :func:`ingest.canonical.parse_wire` makes them without an
    :class:`EventRecord`; :func:`wire` makes one of an :class:`EventRecord`."""

    event_id: str
    source: str
    key: bytes
    value: bytes


def wire(record: EventRecord) -> WireRecord:
    """The wire form of ``record``: key :func:`record_key`, value ``record.to_json()``."""
    return WireRecord(record.event_id, record.source, record_key(record), record.to_json())


Publishable = EventRecord | WireRecord
"""What :meth:`Publisher.publish` takes: records, or their wire form."""


@functools.lru_cache(maxsize=1 << 16)
def _key_hash(key: bytes) -> int:
    return int(murmur2(key)) & 0x7FFFFFFF


def partition_of(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
    """aiokafka's default partitioner (murmur2 of the key, like the Java client), with the
    pure-Python hash remembered per key: a message's events share their key, and the hash
    was a few per cent of a single-event webhook's CPU (docs/benchmarks.md)."""
    if key is None:
        return random.choice(available or all_partitions)  # noqa: S311 - not for secrets
    return all_partitions[_key_hash(key) % len(all_partitions)]


def _acknowledged(future: asyncio.Future[object]) -> bool:
    """True when the broker acknowledged this record (the future holds its metadata)."""
    return future.done() and not future.cancelled() and future.exception() is None


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
        self._last_ack = time.monotonic()

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
            partitioner=partition_of,
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

    def _replace(self, failed: AIOKafkaProducer, reason: str) -> None:
        # Only the producer in place is replaced: a request that was still waiting on an
        # older one (closed by an earlier replacement) must not start another round.
        if failed is self._producer and self._connector is None and not self._stopping:
            log.warning("replacing kafka producer after %s", reason)
            REPLACEMENTS.labels(reason).inc()
            self._connector = asyncio.create_task(self._connect(), name="kafka-reconnect")

    def _stalled(self) -> bool:
        """True when nothing was acknowledged for a whole ``produce_timeout_s``."""
        return time.monotonic() - self._last_ack >= self._settings.produce_timeout_s

    async def publish(self, records: Sequence[Publishable]) -> None:
        """Send records and wait until Kafka acknowledged every one (acks=all).

        Raises :class:`LogUnavailable` when no producer is connected, on any Kafka error, or
        when the acknowledgements do not arrive within ``produce_timeout_s`` seconds (the
        producer is replaced only when it is broken: see the module's docstring). Then
        the caller must not answer 2xx: some records may still reach the log, and the
        sender's retry is harmless because event ids are deterministic and the fold is
        idempotent.
        """
        producer = self._producer
        if producer is None or self._connector is not None:
            PUBLISH_FAILURES.labels("not_connected").inc()
            raise LogUnavailable("the event log is not reachable")
        topic = self._settings.topic
        futures: list[asyncio.Future[object]] = []
        try:
            async with asyncio.timeout(self._settings.produce_timeout_s):
                for index, record in enumerate(records):
                    if index and not index % STEP:
                        await asyncio.sleep(0)  # a large batch in steps: see parse_wire_yielding
                    out = record if isinstance(record, WireRecord) else wire(record)
                    futures.append(await producer.send(topic, out.value, key=out.key))
                if len(futures) == 1:
                    await futures[0]  # what gather does for one, without its bookkeeping
                else:
                    await asyncio.gather(*futures)
        except TIMEOUTS:
            PUBLISH_FAILURES.labels("timeout").inc()
            # A large batch that was partly acknowledged made progress: the producer works.
            if any(_acknowledged(f) for f in futures):
                self._last_ack = time.monotonic()
            if self._stalled():
                self._replace(producer, "timeout")
            raise LogUnavailable("the event log did not acknowledge in time") from None
        except KafkaError as exc:
            name = exc.__class__.__name__
            PUBLISH_FAILURES.labels(name).inc()
            if isinstance(exc, BROKEN):
                self._replace(producer, name)
            raise LogUnavailable(f"the event log refused the events: {name}") from None
        self._last_ack = time.monotonic()
        if len(records) == 1:
            _published(records[0].source).inc()
            return
        sources = Tally(r.source for r in records)
        for source, count in sources.items():
            _published(source).inc(count)

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
