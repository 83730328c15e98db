"""``msgstatus dlq``: look at dead letters and send them through the fold again after a fix."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from projector.settings import ProjectorSettings
from runtime.topics import ensure_topics

REPLAY_GROUP = "msgstatus-dlq-replay"


async def list_letters(settings: ProjectorSettings, limit: int = 100) -> list[dict[str, Any]]:
    """The first ``limit`` dead letters, oldest first, each with its topic offset.

    Shape: ``{"partition", "offset", "reason", "messageId"?, "deadLetteredAt", "event"|"raw"}``.
    """
    consumer = AIOKafkaConsumer(
        settings.dead_letter_topic,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    out: list[dict[str, Any]] = []
    try:
        while len(out) < limit:
            batch = await consumer.getmany(timeout_ms=1000, max_records=limit)
            if not batch:
                break
            for records in batch.values():
                for r in records:
                    letter = orjson.loads(r.value)
                    out.append({"partition": r.partition, "offset": r.offset, **letter})
    finally:
        await consumer.stop()
    return sorted(out, key=lambda d: d["deadLetteredAt"])[:limit]


def original_payload(letter: dict[str, Any]) -> bytes | None:
    """The record value to publish again: the original event, or the raw invalid value."""
    event = letter.get("event")
    if isinstance(event, dict) and "eventId" in event:
        return orjson.dumps(event)
    raw = letter.get("raw")
    return raw.encode() if isinstance(raw, str) else None


async def replay_letters(settings: ProjectorSettings, from_beginning: bool = False) -> int:
    """Publish dead letters' original events to the event topic again; returns how many.

    Uses the consumer group ``msgstatus-dlq-replay``, so each letter is sent once unless
    ``from_beginning``; only letters present when it starts are sent. Letters that still
    cannot apply are dead-lettered again by the projector. Publishing is acknowledged
    (acks=all) before the group's offsets are committed.
    """
    await ensure_topics(settings)
    consumer = AIOKafkaConsumer(
        settings.dead_letter_topic,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=REPLAY_GROUP,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers, acks="all", enable_idempotence=True
    )
    await consumer.start()
    await producer.start()
    sent = 0
    try:
        # Only the letters there now: a letter that still fails comes back as a new letter,
        # which must wait for the next run instead of cycling for ever.
        while not consumer.assignment():  # noqa: ASYNC110 - waits for the group assignment
            await asyncio.sleep(0.05)
        tps = list(consumer.assignment())
        ends = await consumer.end_offsets(tps)
        if from_beginning:
            await consumer.seek_to_beginning()
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=2000, max_records=1000)
            futures = []
            for tp, records in batch.items():
                for r in records:
                    if r.offset >= ends[tp]:
                        continue
                    payload = original_payload(orjson.loads(r.value))
                    if payload is not None:
                        futures.append(await producer.send(settings.topic, payload, key=r.key))
            await asyncio.gather(*futures)
            sent += len(futures)
            await consumer.commit(
                {tp: min(rs[-1].offset + 1, ends[tp]) for tp, rs in batch.items() if rs}
            )
        return sent
    finally:
        await producer.stop()
        await consumer.stop()
