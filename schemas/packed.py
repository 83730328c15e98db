"""The stored value of a message in format 2, both directions (projector, read API, scripts).

A message's field in its bucket (``schemas.layout``) holds::

    <expiry ms> RS <document parts> RS <state (MessagePack)>

``RS`` is 0x1E; the document parts are joined by ``US`` (0x1F). Neither byte can occur in
the parts: they are JSON text, where control characters are always escaped. The parts are
the variable pieces of the read API's ``{"message": ...}`` document; :data:`TEMPLATE` puts
them back together with the message id (a ``%s`` format, so Python's ``bytes %`` and Lua's
``string.format`` render it alike), which keeps about 200 bytes of field names out of every
message. They are empty while the message has not been accepted (the API answers 404).
The state is what the fold needs beyond the document: ``[send ms, first seen ms - send ms,
phone, entry...]`` once accepted, ``[first seen ms, null, entry...]`` before; each entry is
``[event key, status code, occurred ms - the first number, provider status, code,
message]`` with trailing nulls left out. It is encoded as MessagePack (msgspec), about a
quarter smaller than the same array as JSON; values written as JSON by the first builds of
this format (their state starts with ``[``, which no MessagePack array does) are still read.
"""

from __future__ import annotations

import functools
from typing import Any

import msgspec
import orjson

from schemas.documents import MessageView
from schemas.status import STATUS_BY_CODE, STATUS_CODE, Channel, Status
from schemas.stored import Acceptance, HistoryEntry, MessageState
from schemas.timefmt import format_seconds

_MSGPACK = msgspec.msgpack.Encoder()
_UNPACK = msgspec.msgpack.Decoder()

RS = b"\x1e"
US = b"\x1f"
TEMPLATE = (
    b'{"message":{"id":"%s","providerAcceptanceAt":"%s","statusChangedAt":"%s",'
    b'"reference":%s,"channel":"%s","status":"%s","provider":{"name":"%s","id":"%s",'
    b'"status":"%s","code":"%s"%s}%s}}'
)
PARTS = 11
"""Document parts: accepted at, changed at, reference object, channel, status, provider name,
id, status, code, ``,"message":...`` or empty, ``,"sms":{...}`` or empty."""


def _text(value: str) -> bytes:
    """A string as the inside of a JSON string literal (escaped as orjson escapes it)."""
    return orjson.dumps(value)[1:-1]


def _untext(part: bytes) -> str:
    return str(orjson.loads(b'"' + part + b'"'))


def document_parts(view: MessageView) -> bytes:
    """The document parts of a view, joined by ``US`` (see :func:`render`)."""
    reference: dict[str, str] = {}
    if view.reference is not None:
        for name, value in zip(("service", "action", "key"), view.reference, strict=True):
            if value is not None:
                reference[name] = value
    message = b',"message":' + orjson.dumps(view.provider_message) if view.provider_message else b""
    sms = b""
    if view.channel is Channel.SMS and view.segments is not None:
        sms = b',"sms":{"segments":%d}' % view.segments
    return US.join(
        (
            format_seconds(view.accepted_ms).encode(),
            format_seconds(view.changed_ms).encode(),
            orjson.dumps(reference),
            view.channel.value.encode(),
            view.status.value.encode(),
            _text(view.provider_name),
            _text(view.provider_id or ""),
            _text(view.provider_status or view.status.value.lower()),
            _text(view.provider_code or ""),
            message,
            sms,
        )
    )


def render(message_id: str, parts: bytes) -> bytes:
    """The ``{"message": ...}`` document from a message id and its document parts."""
    return TEMPLATE % (message_id.encode(), *parts.split(US))


def render_page(flat: bytes) -> bytes:
    """Documents joined by commas from ``id US parts US id US parts ...`` (the list script's
    reply): one split and one ``bytes %`` for the whole page."""
    if not flat:
        return b""
    values = flat.split(US)
    return _page_template(len(values) // (PARTS + 1)) % tuple(values)


@functools.lru_cache(maxsize=128)
def _page_template(n: int) -> bytes:
    return b",".join([TEMPLATE] * n)


def encode(state: MessageState, document: bytes, expire_ms: int) -> bytes:
    """The stored value: expiry, document parts (:func:`document_parts`), compact state."""
    acc = state.acceptance
    base = state.first_seen_ms if acc is None else acc.occurred_ms
    head: list[Any] = [base, None]
    if acc is not None:
        head = [base, state.first_seen_ms - base, acc.phone]
    for e in state.entries:
        row: list[Any] = [
            e.event_key,
            STATUS_CODE[e.status],
            e.occurred_ms - base,
            e.provider_status,
            e.provider_code,
            e.provider_message,
        ]
        while row[-1] is None:
            row.pop()
        head.append(row)
    return b"%d" % expire_ms + RS + document + RS + _MSGPACK.encode(head)


def split(raw: bytes) -> tuple[int, bytes, bytes]:
    """(expiry ms, document parts, state). Raises ``ValueError`` when malformed."""
    expiry, parts, state = raw.split(RS, 2)
    return int(expiry), parts, state


def expiry_of(raw: bytes) -> int:
    """The expiry (epoch ms) of a stored value."""
    return int(raw[: raw.index(RS)])


def document(message_id: str, raw: bytes, now_ms: int) -> bytes | None:
    """The read API document of a stored value, or None while unaccepted or once expired."""
    expiry, parts, _ = split(raw)
    if not parts or expiry <= now_ms:
        return None
    return render(message_id, parts)


def _acceptance(parts: bytes, occurred_ms: int, phone: str) -> Acceptance:
    p = parts.split(US)
    ref = orjson.loads(p[2])
    sms = p[10]
    return Acceptance(
        occurred_ms=occurred_ms,
        channel=Channel(p[3].decode()),
        phone=phone,
        reference=(ref.get("service"), ref.get("action"), ref.get("key")) if ref else None,
        segments=int(sms[sms.rindex(b":") + 1 : -1]) if sms else None,
        provider_name=_untext(p[5]),
        provider_id=_untext(p[6]) or None,
    )


def decode(raw: bytes) -> MessageState:
    """The fold state of a stored value. Raises ``ValueError`` when it is corrupt."""
    try:
        _, parts, state = split(raw)
        head = orjson.loads(state) if state[:1] == b"[" else _UNPACK.decode(state)
        base = head[0]
        accepted = head[1] is not None
        acc = _acceptance(parts, base, head[2]) if accepted else None
        first_seen = base + head[1] if accepted else base
        entries = tuple(
            HistoryEntry(
                status=STATUS_BY_CODE[row[1]],
                occurred_ms=base + row[2],
                provider_status=row[3] if len(row) > 3 else None,
                provider_code=row[4] if len(row) > 4 else None,
                provider_message=row[5] if len(row) > 5 else None,
                event_key=row[0],
            )
            for row in head[3 if accepted else 2 :]
        )
        if accepted != bool(parts):
            raise ValueError("document and state disagree on the acceptance")
        return MessageState(acc, entries, first_seen)
    except (
        orjson.JSONDecodeError,
        msgspec.DecodeError,
        KeyError,
        TypeError,
        ValueError,
        IndexError,
    ) as exc:
        raise ValueError(f"corrupt message state: {exc}") from exc


def status_of(raw: bytes) -> Status | None:
    """The current status in a stored value's document (None while unaccepted)."""
    parts = split(raw)[1]
    return Status(parts.split(US)[4].decode()) if parts else None
