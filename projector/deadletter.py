"""Dead letters: events the projection can never apply, with the reason (docs/design.md §5)."""

from __future__ import annotations

import base64
from typing import Any

import orjson
from aiokafka.structs import ConsumerRecord

from projector.letters import invalid_id, refusal_id
from projector.report import Refusal
from schemas.stored import HistoryEntry, event_key
from schemas.timefmt import format_ms


def entry_json(entry: HistoryEntry) -> dict[str, Any]:
    """A history entry as JSON for a dead letter whose original record is not at hand."""
    return {
        "status": entry.status.value,
        "occurredAt": format_ms(entry.occurred_ms),
        "provider": {"status": entry.provider_status, "code": entry.provider_code},
    }


Letter = tuple[str, bytes, bytes]
"""(letter id, record key, record value) of one dead letter (projector.letters)."""


def refusal_letter(refusal: Refusal, now_ms: int) -> Letter:
    """The dead letter for a refused event.

    Value: ``{"letterId", "reason", "messageId", "deadLetteredAt", "event"}``; ``event`` is
    the original record when it was in the batch, else the stored history entry.
    """
    if refusal.record is not None:
        event: Any = orjson.loads(refusal.record.to_json())
    elif refusal.entry is not None:
        event = entry_json(refusal.entry)
    else:
        event = None
    key = refusal.entry.event_key if refusal.entry is not None else None
    if key is None and refusal.record is not None:
        key = event_key(refusal.record.event_id)
    letter_id = refusal_id(refusal.message_id, key or "", refusal.reason)
    value = {
        "letterId": letter_id,
        "reason": refusal.reason,
        "messageId": refusal.message_id,
        "deadLetteredAt": format_ms(now_ms),
        "event": event,
    }
    return letter_id, refusal.message_id.encode(), orjson.dumps(value)


def invalid_letter(record: ConsumerRecord[bytes, bytes], reason: str, now_ms: int) -> Letter:
    """The dead letter for a record that is not a valid event.

    Value: ``{"letterId", "reason", "deadLetteredAt", "source": {topic, partition, offset},
    "raw"}`` with the raw value as text when it is UTF-8, else base64 in ``rawBase64``.
    """
    letter_id = invalid_id(record.topic, record.partition, record.offset)
    value: dict[str, Any] = {
        "letterId": letter_id,
        "reason": reason,
        "deadLetteredAt": format_ms(now_ms),
        "source": {"topic": record.topic, "partition": record.partition, "offset": record.offset},
    }
    raw = record.value or b""
    try:
        value["raw"] = raw.decode()
    except UnicodeDecodeError:
        value["rawBase64"] = base64.b64encode(raw).decode()
    return letter_id, record.key or b"", orjson.dumps(value)
