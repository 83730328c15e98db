"""Decoding a batch of log records in one call, without a pydantic object per event.

The log's records are :class:`schemas.events.EventRecord` JSON. :class:`LogEvent` mirrors that
model with msgspec (same field names, aliases and constraints, at least as strict), so a
whole batch is decoded and validated by one ``msgspec`` call. A batch holding a record the
strict decoder refuses is decoded record by record, and each refused record goes through the
pydantic model: the records pydantic accepts are applied (as ``EventRecord``), the others
dead-lettered with pydantic's reason, exactly as before. The fold takes either kind.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

import msgspec
from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError

from schemas.events import NO_CONTROL, UUID_LOWER, EventRecord
from schemas.phone import E164
from schemas.status import Channel, Status
from schemas.tenancy import DEFAULT_TENANT, TENANT_PATTERN
from schemas.timefmt import MAX_MS
from schemas.webhook_config import WebhookConfig


def _strict(pattern: str) -> str:
    # Python's "$" also matches before a final newline; the pydantic model's does not.
    return pattern.removesuffix("$") + r"\Z"


_NONE = _strict(NO_CONTROL)
NonEmpty = Annotated[str, msgspec.Meta(min_length=1, max_length=255, pattern=_NONE)]
ShortText = Annotated[str, msgspec.Meta(max_length=255, pattern=_NONE)]
MessageText = Annotated[
    str, msgspec.Meta(max_length=1000, pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*\Z")
]
Millis = Annotated[int, msgspec.Meta(ge=0, lt=MAX_MS)]
MessageId = Annotated[str, msgspec.Meta(pattern=_strict(UUID_LOWER))]
Phone = Annotated[str, msgspec.Meta(pattern=f"^{E164.pattern}\\Z")]
Segments = Annotated[int, msgspec.Meta(ge=1, le=255)]
Tenant = Annotated[str, msgspec.Meta(pattern=_strict(TENANT_PATTERN))]


class LogReference(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``reference``: service, action, key (all optional)."""

    service: ShortText | None = None
    action: ShortText | None = None
    key: NonEmpty | None = None


class LogSms(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``sms``: the number of segments."""

    segments: Segments


class LogProvider(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``provider``: name, message id, status, code, message (an integer code is left to the
    pydantic model, which turns it into text)."""

    name: NonEmpty | None = None
    id: NonEmpty | None = None
    status: ShortText | None = None
    code: ShortText | None = None
    message: MessageText | None = None


class LogEvent(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    """One log record; attribute names as :class:`schemas.events.EventRecord`'s."""

    event_id: NonEmpty
    status: Status
    occurred_ms: Millis = msgspec.field(name="occurredAt")
    received_ms: Millis = msgspec.field(name="receivedAt")
    schema_version: Literal[1] = 1
    message_id: MessageId | None = None
    channel: Channel | None = None
    phone_number: Phone | None = None
    reference: LogReference | None = None
    sms: LogSms | None = None
    provider: LogProvider = LogProvider()
    source: str = "canonical"
    tenant: Tenant = DEFAULT_TENANT

    @property
    def provider_ref(self) -> tuple[str, str] | None:
        """The (provider name, provider message id) pair, when the event carries both."""
        if self.provider.name is None or self.provider.id is None:
            return None
        return (self.provider.name, self.provider.id)

    @property
    def webhook(self) -> WebhookConfig | None:
        """Always None: a record with a ``webhook`` is decoded by the pydantic model."""
        return None

    def to_json(self) -> bytes:
        """The record value again (camelCase JSON, nulls left out)."""
        return EventRecord.from_json(_ENCODER.encode(self)).to_json()


Event = EventRecord | LogEvent
"""An event as the fold and the store take it."""

_ENCODER = msgspec.json.Encoder()
_BATCH = msgspec.json.Decoder(list[LogEvent])
_ONE = msgspec.json.Decoder(LogEvent)


def _addressable(event: LogEvent) -> bool:
    """The model's cross-field rules (schemas.events.EventRecord._addressable); False sends
    the record through the pydantic model."""
    if event.status is Status.PROVIDER_ACCEPTANCE:
        return not (
            event.message_id is None
            or event.channel is None
            or event.phone_number is None
            or event.provider.name is None
            or event.provider.id is None
        )
    return event.message_id is not None or (
        event.provider.name is not None and event.provider.id is not None
    )


Invalid = list[tuple[ConsumerRecord[bytes, bytes], str]]


def decode(records: Sequence[ConsumerRecord[bytes, bytes]]) -> tuple[list[Event], Invalid]:
    """Split records into valid events and (record, reason) pairs that can never apply."""
    joined = b"[" + b",".join(r.value or b"null" for r in records) + b"]"
    try:
        fast = _BATCH.decode(joined)
        # Every value adds at least one element, so equal counts mean one event per record.
        if len(fast) == len(records) and all(_addressable(e) for e in fast):
            return list(fast), []
    except (msgspec.ValidationError, msgspec.DecodeError):
        pass
    events: list[Event] = []
    invalid: Invalid = []
    for record in records:
        value = record.value or b""
        try:
            one = _ONE.decode(value)
            if _addressable(one):
                events.append(one)
                continue
        except (msgspec.ValidationError, msgspec.DecodeError):
            pass
        try:
            events.append(EventRecord.from_json(value))
        except ValidationError as exc:
            reason = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors()
            )
            invalid.append((record, f"invalid event: {reason}"[:1000]))
    return events, invalid
