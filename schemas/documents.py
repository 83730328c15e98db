"""The read API's response documents (docs/design.md §3), rendered once by the projector.

Field order and presence follow the seed document: ``reference`` is ``{}`` when none was
given, ``sms`` appears for channel SMS only, ``provider.message`` only when there is one,
``provider.code`` is a string (docs/design.md §3). Timestamps are ``YYYY-MM-DDTHH:MM:SSZ``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from schemas.status import Channel, Status
from schemas.stored import HistoryEntry
from schemas.timefmt import format_ms, format_seconds


@dataclass(frozen=True, slots=True)
class MessageView:
    """The folded status of one accepted message (times in epoch ms, UTC)."""

    message_id: str
    accepted_ms: int
    changed_ms: int
    reference: tuple[str | None, str | None, str | None] | None
    channel: Channel
    status: Status
    provider_name: str
    provider_id: str | None
    provider_status: str | None
    provider_code: str | None
    provider_message: str | None
    segments: int | None


def message_object(view: MessageView) -> dict[str, Any]:
    """The ``message`` object of the seed document, in the seed's field order."""
    reference: dict[str, str] = {}
    if view.reference is not None:
        for name, value in zip(("service", "action", "key"), view.reference, strict=True):
            if value is not None:
                reference[name] = value
    provider: dict[str, str] = {
        "name": view.provider_name,
        "id": view.provider_id or "",
        "status": view.provider_status or view.status.value.lower(),
        "code": view.provider_code or "",
    }
    if view.provider_message:
        provider["message"] = view.provider_message
    message: dict[str, Any] = {
        "id": view.message_id,
        "providerAcceptanceAt": format_seconds(view.accepted_ms),
        "statusChangedAt": format_seconds(view.changed_ms),
        "reference": reference,
        "channel": view.channel.value,
        "status": view.status.value,
        "provider": provider,
    }
    if view.channel is Channel.SMS and view.segments is not None:
        message["sms"] = {"segments": view.segments}
    return message


def render_message(view: MessageView) -> bytes:
    """Render ``{"message": {...}}``: the body of ``GET /api/messagestatus/{messageid}``."""
    return orjson.dumps({"message": message_object(view)})


def render_list(joined: bytes) -> bytes:
    """Wrap pre-rendered message documents, already joined by commas, into
    ``{"messages": [...]}`` without parsing them."""
    return b'{"messages":[' + joined + b"]}"


def render_history(message_id: str, entries: tuple[HistoryEntry, ...]) -> bytes:
    """Render the history document: the message's distinct events, oldest first.

    Shape: ``{"messageId": str, "events": [{"status", "occurredAt" (ISO 8601 with ms, UTC),
    "provider": {"status", "code", "message"?}}]}``. Equal instants keep a fixed order
    (status, then provider words), never arrival order.
    """
    events = []
    for entry in sorted(entries, key=HistoryEntry.sort_key):
        provider: dict[str, str] = {}
        if entry.provider_status is not None:
            provider["status"] = entry.provider_status
        if entry.provider_code is not None:
            provider["code"] = entry.provider_code
        if entry.provider_message:
            provider["message"] = entry.provider_message
        events.append(
            {
                "status": entry.status.value,
                "occurredAt": format_ms(entry.occurred_ms),
                "provider": provider,
            }
        )
    return orjson.dumps({"messageId": message_id, "events": events})
