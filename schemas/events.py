"""The canonical event: the record every component agrees on, as kept in the Kafka event log.

A record's value is the JSON of :class:`EventRecord` (camelCase, like the read API) with a
``schemaVersion``; its key is :func:`record_key`. Ingest writes them, the projector and
replay read them (docs/design.md §4 and §5).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    field_validator,
    model_validator,
)

from schemas.phone import E164
from schemas.status import Channel, Status
from schemas.tenancy import DEFAULT_TENANT, TENANT_PATTERN
from schemas.timefmt import MAX_MS
from schemas.webhook_config import WebhookConfig

SCHEMA_VERSION: Literal[1] = 1

EVENT_ID_NAMESPACE = uuid.UUID("6f1b8a52-3c1e-4d3c-9a47-3f0f2b6f9d11")
"""Namespace of the deterministic event ids (RFC 9562 UUIDv5) derived from an event's content."""

NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"
"""No control characters in ids, names, keys and codes: they could forge log lines, and a
key holding one could never be asked for in a URL (docs/pitfalls.md: starlette#2563)."""

UUID_LOWER = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
"""A message or event id as the log holds it: lowercase."""

UUID_TEXT = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
"""A UUID in its 36-character text form, any letter case (ids from URLs and providers)."""

NonEmpty = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=NO_CONTROL)]
ShortText = Annotated[str, StringConstraints(max_length=255, pattern=NO_CONTROL)]
MessageText = Annotated[
    str, StringConstraints(max_length=1000, pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$")
]
"""A provider's error text: line breaks and tabs allowed, other control characters not."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Reference(_Model):
    """The sender's reference (docs/design.md §3): all three parts optional."""

    service: ShortText | None = None
    action: ShortText | None = None
    key: NonEmpty | None = None


class SmsInfo(_Model):
    """SMS-specific data: the number of segments the message used (1 or more)."""

    segments: Annotated[StrictInt, Field(ge=1, le=255)]


class ProviderInfo(_Model):
    """What the provider said: its name, its message id, its own status and code."""

    name: NonEmpty | None = None
    id: NonEmpty | None = None
    status: ShortText | None = None
    code: ShortText | None = None
    message: MessageText | None = None

    @field_validator("code", mode="before")
    @classmethod
    def _code_as_text(cls, value: Any) -> Any:
        """Provider codes are strings in the read API (docs/design.md §3); integers are accepted."""
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value


class EventRecord(_Model):
    """One canonical event as stored in the log.

    Shape (JSON, camelCase): ``schemaVersion`` (int), ``eventId`` (UUID), ``messageId`` (UUID
    or null), ``status``, ``occurredAt`` (epoch ms, UTC), ``receivedAt`` (epoch ms, UTC),
    ``channel``, ``phoneNumber`` (E.164), ``reference``, ``sms``, ``provider``, ``source``
    (the ingest adapter that produced it), ``webhook`` (optional, acceptance only: where to
    push status changes, ``schemas.webhook_config``), ``tenant`` (optional: the tenant of the
    credential the webhook authenticated with; absent means ``schemas.tenancy.DEFAULT_TENANT``,
    so records written before tenants existed stay valid, and it is left out when default).
    Acceptance events carry the message's identity (channel, phone number, reference,
    segments, provider name and id); later events name the message by ``messageId`` or by
    ``provider.name`` + ``provider.id``.

    Raises ``pydantic.ValidationError`` on construction when the rules of docs/design.md §4 fail.
    """

    schema_version: Literal[1] = Field(default=SCHEMA_VERSION, alias="schemaVersion")
    event_id: NonEmpty = Field(alias="eventId")
    message_id: str | None = Field(default=None, alias="messageId", pattern=UUID_LOWER)
    status: Status
    occurred_ms: int = Field(alias="occurredAt", ge=0, lt=MAX_MS)
    received_ms: int = Field(alias="receivedAt", ge=0, lt=MAX_MS)
    channel: Channel | None = None
    phone_number: str | None = Field(default=None, alias="phoneNumber", pattern=f"^{E164.pattern}$")
    reference: Reference | None = None
    sms: SmsInfo | None = None
    provider: ProviderInfo = ProviderInfo()
    source: str = "canonical"
    webhook: WebhookConfig | None = None
    """Acceptance only: where the sender wants status changes pushed (docs/push.md)."""
    tenant: str = Field(default=DEFAULT_TENANT, pattern=TENANT_PATTERN)
    """The tenant the event belongs to (schemas.tenancy), decided by ingest from the credential."""

    @model_validator(mode="after")
    def _addressable(self) -> EventRecord:
        problems = addressing_problems(
            self.status, self.message_id, self.channel, self.phone_number, self.provider
        )
        if problems:
            raise ValueError("; ".join(f"{name}: {message}" for name, message in problems))
        return self

    @property
    def provider_ref(self) -> tuple[str, str] | None:
        """The (provider name, provider message id) pair, when the event carries both."""
        if self.provider.name is None or self.provider.id is None:
            return None
        return (self.provider.name, self.provider.id)

    def to_json(self) -> bytes:
        """Serialise as the log's record value (camelCase JSON, nulls left out)."""
        exclude = _DEFAULT_TENANT_FIELD if self.tenant == DEFAULT_TENANT else None
        return orjson.dumps(
            self.model_dump(by_alias=True, exclude_none=True, exclude=exclude, mode="json")
        )

    @classmethod
    def from_json(cls, raw: bytes) -> EventRecord:
        """Parse a record value. Raises ``pydantic.ValidationError`` when it is not valid."""
        return cls.model_validate_json(raw)


_DEFAULT_TENANT_FIELD: set[str] = {"tenant"}
"""Left out of a record of the default tenant: its JSON stays what it was before tenants."""


def addressing_problems(
    status: Status,
    message_id: object,
    channel: Channel | None,
    phone_number: str | None,
    provider: ProviderInfo,
) -> list[tuple[str, str]]:
    """The addressing rules of docs/design.md §4, as ``(field, problem)`` pairs (empty: none).

    An acceptance carries the message's identity: ``messageId``, ``channel``, ``phoneNumber``,
    ``provider.name`` and ``provider.id``. Any other event names its message by ``messageId``
    or by ``provider.name`` + ``provider.id``. One home for both :class:`EventRecord` and the
    canonical endpoint's field errors; ``message_id`` is the UUID or its text, or None.
    """
    if status is Status.PROVIDER_ACCEPTANCE:
        identity = (
            ("messageId", message_id),
            ("channel", channel),
            ("phoneNumber", phone_number),
            ("provider.name", provider.name),
            ("provider.id", provider.id),
        )
        return [
            (name, "required on a PROVIDER_ACCEPTANCE event")
            for name, value in identity
            if value is None
        ]
    if message_id is None and (provider.name is None or provider.id is None):
        return [("messageId", "required unless provider.name and provider.id name the message")]
    return []


def new_record(
    *,
    event_id: str,
    status: Status,
    occurred_ms: int,
    received_ms: int,
    provider: ProviderInfo,
    source: str,
    message_id: str | None = None,
    channel: Channel | None = None,
    phone_number: str | None = None,
    reference: Reference | None = None,
    sms: SmsInfo | None = None,
    webhook: WebhookConfig | None = None,
    tenant: str = DEFAULT_TENANT,
    checked: bool = False,
) -> EventRecord:
    """The one way ingest builds a log record (the canonical endpoint and every adapter).

    ``checked=True`` says the caller validated every part with the log's own types (E.164
    phone, lower-case UUID text, times in 0..MAX_MS) and :func:`addressing_problems` found
    none: the record is then built without validating it again (the canonical endpoint's hot
    path). Otherwise the record is validated and
    ``pydantic.ValidationError`` raised when a rule fails.
    """
    build: Callable[..., EventRecord] = EventRecord.model_construct if checked else EventRecord
    return build(
        event_id=event_id,
        message_id=message_id,
        status=status,
        occurred_ms=occurred_ms,
        received_ms=received_ms,
        channel=channel,
        phone_number=phone_number,
        reference=reference,
        sms=sms,
        provider=provider,
        source=source,
        webhook=webhook,
        tenant=tenant,
    )


def record_key(event: EventRecord) -> bytes:
    """The Kafka record key: the message id, or ``provider/<name>/<id>`` when it has none.

    All events that carry the message id share its partition; receipts that name the message
    only by its provider id are keyed by that id, so all receipts of one provider message share
    a partition too. The fold does not depend on order, so correctness does not rest on this.
    """
    if event.message_id is not None:
        return event.message_id.encode()
    ref = event.provider_ref
    assert ref is not None  # guaranteed by EventRecord validation
    return f"provider/{ref[0]}/{ref[1]}".encode()


def derive_event_id(content: dict[str, Any]) -> str:
    """Derive a deterministic event id (UUIDv5) from an event's content.

    The content is serialised with sorted keys, so the same callback retried by a provider
    yields the same id, and two callbacks that differ in any field yield different ids.
    """
    canonical = orjson.dumps(content, option=orjson.OPT_SORT_KEYS)
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, canonical.decode()))
