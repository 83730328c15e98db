"""Dead letters: events the projection can never apply, published with the reason (SPEC 5)."""

from __future__ import annotations

import base64
from typing import Any

import orjson
from aiokafka.structs import ConsumerRecord

from projector.report import Refusal
from schemas.stored import HistoryEntry
from schemas.timefmt import format_ms


def entry_json(entry: HistoryEntry) -> dict[str, Any]:
    """A history entry as JSON for a dead letter whose original record is not at hand."""
    return {
        "status": entry.status.value,
        "occurredAt": format_ms(entry.occurred_ms),
        "provider": {"status": entry.provider_status, "code": entry.provider_code},
    }


def refusal_letter(refusal: Refusal, now_ms: int) -> tuple[bytes, bytes]:
    """(key, value) of the dead letter for a refused event.

    Value: ``{"reason", "messageId", "deadLetteredAt", "event"}``; ``event`` is the original
    record when it was in the batch, else the stored history entry.
    """
    if refusal.record is not None:
        event: Any = orjson.loads(refusal.record.to_json())
    elif refusal.entry is not None:
        event = entry_json(refusal.entry)
    else:
        event = None
    value = {
        "reason": refusal.reason,
        "messageId": refusal.message_id,
        "deadLetteredAt": format_ms(now_ms),
        "event": event,
    }
    return refusal.message_id.encode(), orjson.dumps(value)


def invalid_letter(
    record: ConsumerRecord[bytes, bytes], reason: str, now_ms: int
) -> tuple[bytes, bytes]:
    """(key, value) of the dead letter for a record that is not a valid event.

    Value: ``{"reason", "deadLetteredAt", "source": {topic, partition, offset}, "raw"}`` with
    the raw value as text when it is UTF-8, else base64 in ``rawBase64``.
    """
    value: dict[str, Any] = {
        "reason": reason,
        "deadLetteredAt": format_ms(now_ms),
        "source": {"topic": record.topic, "partition": record.partition, "offset": record.offset},
    }
    raw = record.value or b""
    try:
        value["raw"] = raw.decode()
    except UnicodeDecodeError:
        value["rawBase64"] = base64.b64encode(raw).decode()
    return record.key or b"", orjson.dumps(value)
