"""One batch of log records through the projection: decode, dead-letter, apply (shared by the
projector and replay)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord
from prometheus_client import Counter, Gauge
from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from projector.deadletter import invalid_letter, refusal_letter
from projector.errors import WriteConflict
from projector.store import ApplyReport, ProjectionStore
from schemas.events import EventRecord

log = logging.getLogger(__name__)

APPLIED = Counter("msgstatus_events_applied_total", "Events folded into the projection")
DEAD_LETTERED = Counter(
    "msgstatus_events_dead_lettered_total", "Events sent to the dead-letter topic", ["reason"]
)
FAILING = Gauge(
    "msgstatus_projector_failing",
    "1 while the projector is retrying a batch that fails (Redis unreachable, conflicts)",
)
RETRIES = Counter(
    "msgstatus_batch_retries_total", "Batches retried after a transient error", ["error"]
)

TRANSIENT = (RedisConnectionError, RedisTimeoutError, WriteConflict, OSError)
"""Errors a retry of the same batch can cure. Anything else stops the projector unapplied."""


def decode(
    records: Sequence[ConsumerRecord[bytes, bytes]],
) -> tuple[list[EventRecord], list[tuple[ConsumerRecord[bytes, bytes], str]]]:
    """Split records into valid events and (record, reason) pairs that can never apply."""
    events: list[EventRecord] = []
    invalid: list[tuple[ConsumerRecord[bytes, bytes], str]] = []
    for record in records:
        try:
            events.append(EventRecord.from_json(record.value or b""))
        except ValidationError as exc:
            reason = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors()
            )
            invalid.append((record, f"invalid event: {reason}"[:1000]))
    return events, invalid


async def apply_until_done(
    store: ProjectionStore, events: Sequence[EventRecord], retry_max_s: float
) -> ApplyReport:
    """Apply events to one store, retrying the SAME events on transient errors, forever.

    Backoff doubles up to ``retry_max_s`` seconds. A batch is never skipped (PITFALLS:
    aiokafka#1046); any non-transient error propagates so the caller stops uncommitted.
    """
    delay = 0.05
    while True:
        try:
            report = await store.apply(events)
            FAILING.set(0)
            return report
        except TRANSIENT as exc:
            FAILING.set(1)
            RETRIES.labels(exc.__class__.__name__).inc()
            log.warning("batch failed, retrying: %s", exc.__class__.__name__)
            await asyncio.sleep(delay)
            delay = min(delay * 2, retry_max_s)


async def process(
    records: Sequence[ConsumerRecord[bytes, bytes]],
    stores: Sequence[ProjectionStore],
    dead_letters: AIOKafkaProducer | None,
    dead_letter_topic: str,
    retry_max_s: float = 5.0,
) -> ApplyReport:
    """Apply a batch to every target generation until applied; dead-letter what never applies.

    The first store is the served generation: its report is returned and its refusals are
    dead-lettered (acknowledged by Kafka before this returns). With ``dead_letters=None``
    (replay: the live run dead-lettered them already) nothing is published.
    """
    events, invalid = decode(records)
    report = await apply_until_done(stores[0], events, retry_max_s)
    for store in stores[1:]:
        await apply_until_done(store, events, retry_max_s)
    APPLIED.inc(report.applied)
    if dead_letters is None:
        return report
    now = int(time.time() * 1000)
    letters = [invalid_letter(r, reason, now) for r, reason in invalid]
    letters += [refusal_letter(r, now) for r in report.refusals]
    if letters:
        futures = [await dead_letters.send(dead_letter_topic, v, key=k) for k, v in letters]
        await asyncio.gather(*futures)
        DEAD_LETTERED.labels("invalid").inc(len(invalid))
        for refusal in report.refusals:
            DEAD_LETTERED.labels("refused").inc()
            log.warning("dead-lettered event of %s: %s", refusal.message_id, refusal.reason)
    return report
