"""The canonical webhook format (docs/design.md §4): validation and mapping to log records.

Body: one event object or a JSON array of them, camelCase like the read API. Errors name
each bad field with a JSON-pointer-like path (``[2].provider.code``).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
import uuid
from collections.abc import Callable, Generator
from typing import Annotated, Any, TypeVar

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
from ingest.publisher import WireRecord, wire
from ingest.segments import segment_count
from schemas.events import (
    EVENT_ID_NAMESPACE,
    SCHEMA_VERSION,
    UUID_TEXT,
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
from schemas.timefmt import MAX_MS, TimestampError, parse_iso_ms
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


def _envelope(body: bytes, max_events: int) -> tuple[bool, list[Any]]:
    """(whether the body is an array, its items): one event or 1..``max_events`` of them.

    Raises :class:`InvalidBody` for JSON that does not parse, an empty array, too many events.
    """
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidBody([FieldError("body", f"not valid JSON: {exc}")]) from None
    batch = type(data) is list  # orjson gives exact types
    items = data if batch else [data]
    if not items:
        raise InvalidBody([FieldError("body", "an empty array holds no event")])
    if len(items) > max_events:
        raise InvalidBody([FieldError("body", f"at most {max_events} events per request")])
    return batch, items


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
    batch, items = _envelope(body, max_events)
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


# --- the fast path of the common event ---------------------------------------------------
#
# Validating a small event with pydantic (CanonicalEvent, then the record and its JSON through
# model_dump) was the largest cost of a single-event webhook (docs/benchmarks.md). The common
# event -- plain JSON types, no ``text`` and no ``webhook``, every rule met -- is checked here
# by hand and turned straight into the log record's key and JSON. Anything else, including
# every event with a problem, goes through the pydantic path above, which names the problems:
# so this path only ever accepts what that path accepts, with the same record
# (tests/test_canonical_fast.py compares the two), and every 4xx comes from that path.

_FAST_KEYS = frozenset(
    {"eventId", "messageId", "status", "occurredAt", "channel", "phoneNumber", "reference"}
    | {"sms", "provider"}
)
_REFERENCE_KEYS = ("service", "action", "key")
_REFERENCE_SET = frozenset(_REFERENCE_KEYS)
_PROVIDER_KEYS = ("name", "id", "status", "code", "message")
_PROVIDER_SET = frozenset(_PROVIDER_KEYS)
_STATUSES = {s.value: s for s in Status}
_CHANNELS = {c.value: c for c in Channel}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MESSAGE_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_UUID_FULL = UUID_TEXT.fullmatch
_E = TypeVar("_E", Status, Channel)


class _Slow(Exception):  # noqa: N818 - control flow, never leaves this module
    """The event is not the common valid one: the pydantic path decides (and names problems)."""


def _need(ok: bool) -> None:
    if not ok:
        raise _Slow


def _text(value: object, least: int, most: int) -> str:
    """``NonEmpty`` (least 1) or ``ShortText`` (least 0) of :mod:`schemas.events`."""
    _need(type(value) is str)
    assert isinstance(value, str)
    _need(least <= len(value) <= most and _CONTROL.search(value) is None)
    return value


def _uuid_text(value: object) -> str | None:
    """The lower-case text of a UUID in its 36-character form (pydantic's ``uuid.UUID``
    accepts more forms: those take the pydantic path); None stays None."""
    if value is None:
        return None
    _need(type(value) is str and len(value) == 36 and _UUID_FULL(value) is not None)
    assert isinstance(value, str)
    return value.lower()


def _choice(value: object, choices: dict[str, _E]) -> _E | None:
    if value is None:
        return None
    found = choices.get(value) if type(value) is str else None
    _need(found is not None)
    return found


def _fast_reference(value: object) -> dict[str, str] | None:
    if value is None:
        return None
    _need(type(value) is dict and value.keys() <= _REFERENCE_SET)
    assert isinstance(value, dict)
    out = {}
    for name in _REFERENCE_KEYS:  # the model's field order: the record's JSON keeps it
        part = value.get(name)
        if part is not None:
            out[name] = _text(part, 1 if name == "key" else 0, 255)
    return out


def _fast_sms(value: object) -> dict[str, int] | None:
    if value is None:
        return None
    _need(type(value) is dict and value.keys() == {"segments"})
    assert isinstance(value, dict)
    segments = value["segments"]
    _need(type(segments) is int and 1 <= segments <= 255)
    return {"segments": segments}


def _fast_provider(value: object) -> dict[str, str]:
    _need(type(value) is dict and value.keys() <= _PROVIDER_SET)
    assert isinstance(value, dict)
    out = {}
    for name in _PROVIDER_KEYS:
        part = value.get(name)
        if part is None:
            continue
        if name == "code" and type(part) is int:
            part = str(part)  # ProviderInfo accepts integer codes as their text
        if name == "message":
            _need(type(part) is str and len(part) <= 1000)
            _need(_MESSAGE_CONTROL.search(part) is None)
            out[name] = part
        else:
            out[name] = _text(part, 1 if name in ("name", "id") else 0, 255)
    _need("status" in out and "code" in out)
    return out


_SIMPLE_TIME = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}):([0-5][0-9])(?:\.([0-9]{1,9}))?(?:Z|\+00:00)?"
)
_MINUTES: dict[str, int] = {}
"""Epoch ms of the minutes seen lately (``2026-02-04T06:54`` -> ms), checked by parse_iso_ms."""


def _fast_time(value: object, received_ms: int, max_skew_s: int | None) -> int:
    """:func:`schemas.timefmt.parse_iso_ms`; the usual ``...T06:54:35.123Z`` form from the
    epoch ms of its minute, remembered (events arrive in time order, more or less). UTC
    only (``Z``, ``+00:00`` or no offset); other forms are parsed in full."""
    _need(type(value) is str)
    assert isinstance(value, str)
    simple = _SIMPLE_TIME.fullmatch(value)
    try:
        if simple is None:
            occurred_ms = parse_iso_ms(value)
        else:
            minute = _MINUTES.get(simple[1])
            if minute is None:
                minute = parse_iso_ms(simple[1] + ":00Z")
                if len(_MINUTES) >= 4096:
                    _MINUTES.clear()
                _MINUTES[simple[1]] = minute
            frac = simple[3]
            occurred_ms = minute + int(simple[2]) * 1000 + (int((frac + "00")[:3]) if frac else 0)
            _need(occurred_ms < MAX_MS)
    except TimestampError:
        raise _Slow from None
    _need(max_skew_s is None or occurred_ms <= received_ms + max_skew_s * 1000)
    return occurred_ms


def _fast_phone(value: object) -> str | None:
    if value is None:
        return None
    _need(type(value) is str and 1 <= len(value) <= 32)
    assert isinstance(value, str)
    try:
        return normalize_e164(value)
    except PhoneNumberError:
        raise _Slow from None


_NAMESPACE = EVENT_ID_NAMESPACE.bytes


def _event_id(content: dict[str, Any]) -> str:
    """:func:`schemas.events.derive_event_id` (UUIDv5 of the sorted-key JSON), without
    building ``uuid.UUID`` objects."""
    digest = bytearray(
        hashlib.sha1(
            _NAMESPACE + orjson.dumps(content, option=orjson.OPT_SORT_KEYS), usedforsecurity=False
        ).digest()
    )
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest[:16].hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _fast_item(
    item: dict[str, Any],
    received_ms: int,
    normalize_id: IdNormalizer | None,
    max_skew_s: int | None,
) -> WireRecord:
    """The wire record of a common, valid event; raises :class:`_Slow` for any other."""
    _need(item.keys() <= _FAST_KEYS)
    get = item.get
    event_id = _uuid_text(get("eventId"))
    message_id = _uuid_text(get("messageId"))
    status = _choice(get("status"), _STATUSES)
    _need(status is not None)
    occurred_ms = _fast_time(get("occurredAt"), received_ms, max_skew_s)
    channel = _choice(get("channel"), _CHANNELS)
    phone = _fast_phone(get("phoneNumber"))
    reference = _fast_reference(get("reference"))
    sms = _fast_sms(get("sms"))
    provider = _fast_provider(get("provider"))
    name, pid = provider.get("name"), provider.get("id")
    # The rules of _problems (no text, no webhook here): a problem takes the pydantic path.
    if status is Status.PROVIDER_ACCEPTANCE:
        _need(None not in (message_id, channel, phone, name, pid))
        _need(channel is not Channel.SMS or sms is not None)
    else:
        _need(message_id is not None or (name is not None and pid is not None))
        _need(status is not Status.READ or channel is not Channel.SMS)
    if normalize_id is not None and name is not None and pid is not None:
        try:
            provider["id"] = pid = normalize_id(name, pid, phone)
        except ValueError:
            raise _Slow from None
    if event_id is None:
        event_id = _event_id(
            {
                "messageId": message_id,
                "status": status,
                "occurredAt": occurred_ms,
                "channel": channel,
                "phoneNumber": phone,
                "reference": reference,
                "sms": sms,
                "provider": provider,
            }
        )
    # EventRecord.to_json: its fields in order, nulls left out.
    record: dict[str, Any] = {"schemaVersion": SCHEMA_VERSION, "eventId": event_id}
    if message_id is not None:
        record["messageId"] = message_id
    record["status"] = status
    record["occurredAt"] = occurred_ms
    record["receivedAt"] = received_ms
    optional = (("channel", channel), ("phoneNumber", phone), ("reference", reference))
    for field, value in (*optional, ("sms", sms)):
        if value is not None:
            record[field] = value
    record["provider"] = provider
    record["source"] = SOURCE
    key = message_id.encode() if message_id is not None else f"provider/{name}/{pid}".encode()
    return WireRecord(event_id, SOURCE, key, orjson.dumps(record))


STEP = 16
"""Events parsed between two returns to the event loop (:func:`parse_wire_yielding`)."""


def _wire_steps(
    body: bytes, max_events: int, normalize_id: IdNormalizer | None, max_skew_s: int | None
) -> Generator[None, None, list[WireRecord]]:
    """:func:`parse_wire`'s work, pausing (``yield``) after every :data:`STEP` events."""
    batch, items = _envelope(body, max_events)
    received_ms = int(time.time() * 1000)
    errors: list[FieldError] = []
    records: list[WireRecord] = []
    for index, item in enumerate(items):
        if index and not index % STEP:
            yield
        if type(item) is dict:
            try:
                records.append(_fast_item(item, received_ms, normalize_id, max_skew_s))
                continue
            except _Slow:
                pass
        where = f"[{index}]" if batch else ""
        result = _parse_item(item, where, received_ms, normalize_id, max_skew_s)
        if isinstance(result, list):
            errors.extend(result)
        else:
            records.append(wire(result))
    if errors:
        raise InvalidBody(errors)
    return records


def parse_wire(
    body: bytes,
    max_events: int,
    normalize_id: IdNormalizer | None = None,
    *,
    max_skew_s: int | None = None,
) -> list[WireRecord]:
    """:func:`parse_body`, as the records' Kafka keys and values (what the handler
    publishes): the same records, the same :class:`InvalidBody`, without building pydantic
    models for the common event (see above)."""
    steps = _wire_steps(body, max_events, normalize_id, max_skew_s)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]


async def parse_wire_yielding(
    body: bytes,
    max_events: int,
    normalize_id: IdNormalizer | None = None,
    *,
    max_skew_s: int | None = None,
) -> list[WireRecord]:
    """:func:`parse_wire`, returning to the event loop after every :data:`STEP` events: a
    large body is parsed in steps of a fraction of a millisecond, so the requests that
    arrive meanwhile (a 503 of admission control above all) are not kept waiting behind it
    (docs/operations.md "Overload")."""
    steps = _wire_steps(body, max_events, normalize_id, max_skew_s)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        await asyncio.sleep(0)
