"""Which dead letters exist already, so each is recorded once however often the log is folded.

The projection can be rebuilt from the log at any time (a Redis without persistence, a lost
partition, a replay in place); the fold is idempotent, and so must its side effects be. Every
dead letter carries a ``letterId`` that depends only on what was refused and why: the message,
the event (its history key) and the reason for a refused event, the log position for a record
that is not an event.
At start-up the projector reads the ids of the letters already in the dead-letter topic
(docs/design.md §5), and publishes only letters whose id it has not seen. The same key is the
one any later side effect of folding (push notifications) is to be made idempotent by.

Limit: two projector instances folding the same record at once (the overlap of a rebalance)
may each publish its letter before seeing the other's; the letter ids are then equal, so a
reader can drop the repeat.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from schemas.stored import event_key

log = logging.getLogger(__name__)


def refusal_id(message_id: str, key: str, reason: str) -> str:
    """The letter id of a refused event: ``refused:<message id>:<event key>:<reason>`` (the
    event key of ``schemas.stored.event_key``, the same whether or not the record is at hand)."""
    return f"refused:{message_id}:{key}:{reason}"


def invalid_id(topic: str, partition: int, offset: int) -> str:
    """The letter id of a log record that is not a valid event: ``record:<topic>:<p>:<offset>``."""
    return f"record:{topic}:{partition}:{offset}"


def letter_id_of(letter: dict[str, Any]) -> str | None:
    """The id of a letter as read back from the topic (letters written before ids existed are
    given the id they would have had), or None when it cannot be told."""
    given = letter.get("letterId")
    if isinstance(given, str):
        return given
    event, reason, source = letter.get("event"), letter.get("reason"), letter.get("source")
    mid = letter.get("messageId")
    if isinstance(event, dict) and isinstance(event.get("eventId"), str) and reason and mid:
        return refusal_id(str(mid), event_key(event["eventId"]), str(reason))
    if isinstance(source, dict):
        return invalid_id(str(source.get("topic")), int(source["partition"]), int(source["offset"]))
    return None


class DeadLetterLedger:
    """The ids of the letters in the dead-letter topic; :meth:`load` once, then :meth:`fresh`."""

    def __init__(self, seen: Iterable[str] = ()) -> None:
        self._seen = set(seen)

    def __len__(self) -> int:
        return len(self._seen)

    @classmethod
    async def load(cls, bootstrap_servers: str, topic: str) -> DeadLetterLedger:
        """Read every letter id of ``topic`` up to its current end (no consumer group)."""
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap_servers,
            enable_auto_commit=False,
            group_id=None,  # no group: every partition is assigned, from the beginning
            auto_offset_reset="earliest",
        )
        await consumer.start()
        seen: set[str] = set()
        try:
            tps = list(consumer.assignment())
            if not tps:
                return cls()
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
                batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
                for records in batch.values():
                    for record in records:
                        letter_id = _id_of_value(record.value)
                        if letter_id is not None:
                            seen.add(letter_id)
        finally:
            await consumer.stop()
        log.info("%d dead letters known in %s", len(seen), topic)
        return cls(seen)

    def fresh(self, letter_id: str) -> bool:
        """True (and remembered) the first time ``letter_id`` is offered, False after."""
        if letter_id in self._seen:
            return False
        self._seen.add(letter_id)
        return True

    def forget(self, letter_id: str) -> None:
        """Undo :meth:`fresh` for a letter whose publishing failed (it will be offered again)."""
        self._seen.discard(letter_id)


def _id_of_value(value: bytes | None) -> str | None:
    try:
        letter = orjson.loads(value or b"null")
    except orjson.JSONDecodeError:
        return None
    return letter_id_of(letter) if isinstance(letter, dict) else None
