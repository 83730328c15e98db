"""The canonical webhook format (docs/design.md §4): validation and mapping to log records.

Body: one event object or a JSON array of them, camelCase like the read API. Errors name
each bad field with a JSON-pointer-like path (``[2].provider.code``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Annotated

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from ingest.errors import InvalidBody
from ingest.segments import segment_count
from schemas.events import (
    EventRecord,
    ProviderInfo,
    Reference,
    SmsInfo,
    addressing_problems,
    derive_event_id,
    new_record,
)
from schemas.phone import PhoneNumberError, normalize_e164
from schemas.problems import FieldError
from schemas.status import Channel, Status
from schemas.timefmt import TimestampError, parse_iso_ms
from schemas.webhook_config import WebhookConfig

MAX_TEXT = 10_000
SOURCE = "canonical"
"""The ``source`` of the endpoint's records."""

IdNormalizer = Callable[[str, str, str | None], str]
"""``(provider name, provider id, E.164 phone or None) -> normalised id``; ``ValueError`` when
the id cannot be an id of that provider. See :class:`ingest.providers.registry.ProviderIds`."""


class CanonicalEvent(BaseModel):
    """One event as senders post it; ``text`` is used for the segment count, then dropped."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    eventId: uuid.UUID | None = None  # noqa: N815 - wire name
    messageId: uuid.UUID | None = None  # noqa: N815 - wire name
    status: Status
    occurredAt: int  # noqa: N815 - wire name: ISO 8601 text in, epoch ms (UTC) after validation
    channel: Channel | None = None
    phoneNumber: Annotated[str, StringConstraints(min_length=1, max_length=32)] | None = None  # noqa: N815 - wire name
    reference: Reference | None = None
    sms: SmsInfo | None = None
    text: Annotated[str, Field(max_length=MAX_TEXT)] | None = None
    provider: ProviderInfo
    webhook: WebhookConfig | None = None  # acceptance only: push endpoint (docs/push.md)

    @field_validator("occurredAt", mode="before")
    @classmethod
    def _iso(cls, value: object) -> int:
        if not isinstance(value, str):
            raise ValueError("an ISO 8601 date-time string, e.g. 2026-02-04T06:54:35Z")
        try:
            return parse_iso_ms(value)
        except TimestampError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("phoneNumber")
    @classmethod
    def _e164(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return normalize_e164(value)
        except PhoneNumberError as exc:
            raise ValueError(str(exc)) from None


def _field_errors(exc: ValidationError, prefix: str) -> list[FieldError]:
    out = []
    for err in exc.errors(include_url=False):
        path = prefix
        for part in err["loc"]:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        out.append(FieldError(path or "body", err["msg"]))
    return out


def _problems(event: CanonicalEvent) -> list[tuple[str, str]]:
    """The addressing rules every record follows (:func:`schemas.events.addressing_problems`),
    then the rules of the wire format alone (docs/design.md §2 and §4)."""
    status, channel, provider = event.status, event.channel, event.provider
    problems = addressing_problems(status, event.messageId, channel, event.phoneNumber, provider)
    if channel is Channel.SMS:
        if status is Status.PROVIDER_ACCEPTANCE and event.sms is None and event.text is None:
            problems.append(("sms.segments", "an SMS acceptance needs sms.segments or text"))
        elif status is Status.READ:
            problems.append(("status", "READ is for RCS messages only"))
    if event.webhook is not None and status is not Status.PROVIDER_ACCEPTANCE:
        problems.append(("webhook", "only a PROVIDER_ACCEPTANCE event names a webhook"))
    if provider.status is None:
        problems.append(("provider.status", "required"))
    if provider.code is None:
        problems.append(("provider.code", "required"))
    return problems


def _record(event: CanonicalEvent, received_ms: int) -> EventRecord:
    """The log record of a checked canonical event; ``eventId`` derived from its content when
    absent. Every part was validated by :class:`CanonicalEvent` with the log's own types and
    :func:`_problems` found none, so the record is not validated again."""
    sms = event.sms
    if sms is None and event.channel is Channel.SMS and event.text is not None:
        sms = SmsInfo(segments=max(1, segment_count(event.text)))
    message_id = str(event.messageId) if event.messageId else None
    if event.eventId is not None:
        event_id = str(event.eventId)
    else:
        reference = event.reference
        event_id = derive_event_id(
            {
                "messageId": message_id,
                "status": event.status.value,
                "occurredAt": event.occurredAt,
                "channel": event.channel.value if event.channel else None,
                "phoneNumber": event.phoneNumber,
                "reference": reference.model_dump(exclude_none=True) if reference else None,
                "sms": sms.model_dump() if sms else None,
                "provider": event.provider.model_dump(exclude_none=True),
            }
        )
    return new_record(
        event_id=event_id,
        message_id=message_id,
        status=event.status,
        occurred_ms=event.occurredAt,
        received_ms=received_ms,
        channel=event.channel,
        phone_number=event.phoneNumber,
        reference=event.reference,
        sms=sms,
        provider=event.provider,
        source=SOURCE,
        webhook=event.webhook,
        checked=True,
    )


def _normalized(event: CanonicalEvent, normalize_id: IdNormalizer) -> CanonicalEvent:
    """The event with its provider id in the adapter's normal form (``ValueError`` if bad)."""
    name, pid = event.provider.name, event.provider.id
    if name is None or pid is None:
        return event
    fixed = normalize_id(name, pid, event.phoneNumber)
    if fixed == pid:
        return event
    return event.model_copy(update={"provider": event.provider.model_copy(update={"id": fixed})})


def _parse_item(
    item: object,
    prefix: str,
    received_ms: int,
    normalize_id: IdNormalizer | None,
    max_skew_s: int | None = None,
) -> EventRecord | list[FieldError]:
    """One event of a body: its record, or the errors naming its bad fields."""
    if not isinstance(item, dict):
        return [FieldError(prefix or "body", "an event is a JSON object")]
    try:
        event = CanonicalEvent.model_validate(item)
    except ValidationError as exc:
        return _field_errors(exc, prefix)
    problems = _problems(event)
    if max_skew_s is not None and event.occurredAt > received_ms + max_skew_s * 1000:
        problems.append(
            ("occurredAt", f"more than {max_skew_s} s ahead of the server's clock (UTC)")
        )
    if normalize_id is not None and not problems:
        try:
            event = _normalized(event, normalize_id)
        except ValueError as exc:
            problems.append(("provider.id", str(exc)))
    if problems:
        return [FieldError(f"{prefix}.{n}" if prefix else n, m) for n, m in problems]
    return _record(event, received_ms)


def parse_body(
    body: bytes,
    max_events: int,
    normalize_id: IdNormalizer | None = None,
    *,
    max_skew_s: int | None = None,
) -> list[EventRecord]:
    """Parse and validate a canonical webhook body into log records.

    ``normalize_id`` rewrites provider ids into the form the provider adapters use, so an
    acceptance posted here and the adapter's receipts name the same provider message.
    ``max_skew_s``: an ``occurredAt`` further ahead of the server's clock is refused (an
    implausible time whose keys would outlive every retention).
    Raises :class:`InvalidBody` naming every bad field (all events are checked, so the
    sender sees every problem of a batch at once); nothing of a bad batch is published.
    """
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidBody([FieldError("body", f"not valid JSON: {exc}")]) from None
    batch = isinstance(data, list)
    items = data if batch else [data]
    if not items:
        raise InvalidBody([FieldError("body", "an empty array holds no event")])
    if len(items) > max_events:
        raise InvalidBody([FieldError("body", f"at most {max_events} events per request")])
    received_ms = int(time.time() * 1000)
    errors: list[FieldError] = []
    records: list[EventRecord] = []
    for index, item in enumerate(items):
        where = f"[{index}]" if batch else ""
        result = _parse_item(item, where, received_ms, normalize_id, max_skew_s)
        if isinstance(result, list):
            errors.extend(result)
        else:
            records.append(result)
    if errors:
        raise InvalidBody(errors)
    return records
