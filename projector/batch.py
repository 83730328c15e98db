"""One batch of log records through the projection: decode, dead-letter, apply (shared by the
projector and replay)."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord
from prometheus_client import Counter, Gauge

from projector import checkpoint, logdecode
from projector.changes import ChangePublisher
from projector.deadletter import invalid_letter, refusal_letter
from projector.errors import is_transient
from projector.letters import DeadLetterLedger
from projector.logdecode import Event
from projector.report import ApplyReport
from projector.targets import Store

log = logging.getLogger(__name__)
T = TypeVar("T")

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


def decode(
    records: Sequence[ConsumerRecord[bytes, bytes]],
) -> tuple[list[Event], list[tuple[ConsumerRecord[bytes, bytes], str]]]:
    """Split records into valid events and (record, reason) pairs (projector.logdecode)."""
    return logdecode.decode(records)


async def until_done(step: Callable[[], Awaitable[T]], retry_max_s: float) -> T:
    """Run ``step`` until it succeeds, retrying errors that ``projector.errors.is_transient``
    names (Redis unreachable, write conflicts), forever, with backoff doubling up to
    ``retry_max_s`` seconds.

    A batch is never skipped (docs/pitfalls.md: aiokafka#1046); any other error propagates so the
    caller stops without committing. ``msgstatus_projector_failing`` is 1 while retrying.
    """
    delay = 0.05
    while True:
        try:
            result = await step()
            FAILING.set(0)
            return result
        except Exception as exc:
            FAILING.set(1)
            if not is_transient(exc):
                raise  # not retriable: the projector stops, uncommitted, failing
            RETRIES.labels(exc.__class__.__name__).inc()
            log.warning("projection step failed, retrying: %s", exc.__class__.__name__)
            await asyncio.sleep(delay)
            delay = min(delay * 2, retry_max_s)


async def apply_until_done(
    store: Store, events: Sequence[Event], retry_max_s: float
) -> ApplyReport:
    """Apply events to one store until applied (see :func:`until_done`)."""
    return await until_done(lambda: store.apply(events), retry_max_s)


async def process(
    records: Sequence[ConsumerRecord[bytes, bytes]],
    stores: Sequence[Store],
    dead_letters: AIOKafkaProducer | None,
    dead_letter_topic: str,
    retry_max_s: float = 5.0,
    *,
    ledger: DeadLetterLedger | None = None,
    changes: ChangePublisher | None = None,
) -> ApplyReport:
    """Apply a batch to every target generation until applied; dead-letter what never applies;
    then record each generation's position in the log (projector.store.record_positions).

    The first store is the served generation: its report is returned and its refusals are
    dead-lettered (acknowledged by Kafka before this returns). With ``dead_letters=None``
    (replay: the live run dead-lettered them already) nothing is published. With a
    ``ledger``, a letter already in the dead-letter topic is not published again (a rebuild
    folds the same records again: projector.letters). ``changes`` publishes the served
    generation's status changes before the positions are recorded.
    """
    events, invalid = decode(records)
    report = await apply_until_done(stores[0], events, retry_max_s)
    for store in stores[1:]:
        await apply_until_done(store, events, retry_max_s)
    APPLIED.inc(report.applied)
    if dead_letters is not None:
        await _dead_letter(
            report,
            invalid,
            dead_letters,
            dead_letter_topic,
            ledger if ledger is not None else DeadLetterLedger(),
        )
    if changes is not None:
        await changes.publish(report.changes)
    positions = checkpoint.offsets_after(records)
    report.new_partitions = await until_done(
        functools.partial(stores[0].record_positions, positions), retry_max_s
    )
    for store in stores[1:]:
        await until_done(functools.partial(store.record_positions, positions), retry_max_s)
    return report


async def _dead_letter(
    report: ApplyReport,
    invalid: list[tuple[ConsumerRecord[bytes, bytes], str]],
    dead_letters: AIOKafkaProducer,
    dead_letter_topic: str,
    ledger: DeadLetterLedger,
) -> None:
    """Publish the batch's new dead letters (each letter id once: ``ledger``) and wait for
    Kafka's acknowledgement; a letter whose publishing failed is offered again next time."""
    now = int(time.time() * 1000)
    kinds = [("invalid", invalid_letter(r, reason, now)) for r, reason in invalid]
    kinds += [("refused", refusal_letter(r, now)) for r in report.refusals]
    fresh = [(kind, letter) for kind, letter in kinds if ledger.fresh(letter[0])]
    if not fresh:
        return
    try:
        futures = [
            await dead_letters.send(dead_letter_topic, value, key=key)
            for _, (_, key, value) in fresh
        ]
        await asyncio.gather(*futures)
    except BaseException:
        for _, (letter_id, _, _) in fresh:
            ledger.forget(letter_id)
        raise
    for kind, (letter_id, _, _) in fresh:
        DEAD_LETTERED.labels(kind).inc()
        if kind == "refused":
            log.warning("dead-lettered %s", letter_id)
