"""What the projection keeps per message in Redis and how it is encoded (projector and API).

A message key (``schemas.keys.message_key``) holds one STRING::

    <document JSON>\\n<state JSON>

The document is the read API's answer for ``GET /api/messagestatus/{id}``, rendered by the
projector, so a read is one GET and a slice, with no JSON work. It is empty while the message
has not been accepted yet (the API then answers 404). JSON never contains a raw newline, so
the first newline separates the two parts. The state is what the fold needs to apply the
next event: the winning acceptance and the distinct history entries.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
import uuid
from dataclasses import dataclass

import orjson

from schemas.status import STATUS_BY_CODE, STATUS_CODE, Channel, Status

SEPARATOR = b"\n"


_HEX32 = re.compile(r"[0-9a-fA-F]{32}")


@functools.lru_cache(maxsize=1 << 16)
def event_key(event_id: str) -> str:
    """A short, stable key of an event id: 72 bits of its SHA-256 (12 base64url characters).

    History entries are deduplicated by it. Hashing first matters: time-ordered UUIDs (v1,
    v6, v7) share their leading bytes. 72 bits make a collision between two events of one
    message negligible (< 2^-50 for a thousand events). Cached: a batch asks for the key of
    each event several times (fold, change detection, refusals).
    """
    plain = event_id.replace("-", "")
    if _HEX32.fullmatch(plain):  # the usual UUID text: the bytes uuid.UUID would give
        raw = bytes.fromhex(plain)
    else:
        try:
            raw = uuid.UUID(event_id).bytes
        except ValueError:
            raw = event_id.encode()
    return base64.urlsafe_b64encode(hashlib.sha256(raw).digest()[:9]).decode()


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One distinct event of a message: status, when it happened (epoch ms, UTC), provider
    words, and the key of its event id.

    Events are distinct by event id: a retried callback is kept once even when its time is
    our receive time (Twilio sends none), and then its earliest occurrence counts.
    """

    status: Status
    occurred_ms: int
    provider_status: str | None
    provider_code: str | None
    provider_message: str | None
    event_key: str = ""

    def sort_key(self) -> tuple[int, int, str, str, str, str]:
        """Oldest first; equal instants in a fixed order (status code, provider words, key)."""
        return (
            self.occurred_ms,
            STATUS_CODE[self.status],
            self.provider_status or "",
            self.provider_code or "",
            self.provider_message or "",
            self.event_key,
        )


@dataclass(frozen=True, slots=True)
class Acceptance:
    """The identity a PROVIDER_ACCEPTANCE event gives a message (times in epoch ms, UTC).

    Normalised so that it survives the round trip through the stored document: ``segments``
    only for SMS, ``reference`` None rather than all-empty, ``provider_id`` None rather than "".
    """

    occurred_ms: int
    channel: Channel
    phone: str
    reference: tuple[str | None, str | None, str | None] | None
    segments: int | None
    provider_name: str
    provider_id: str | None

    def sort_key(self) -> tuple[int, str, str, str, int, str, str]:
        """Among several acceptances of one message the smallest key wins: the earliest, then
        by content, so the choice never depends on arrival order."""
        return (
            self.occurred_ms,
            self.channel.value,
            self.phone,
            "\x00".join(p or "" for p in self.reference or ()),
            self.segments or 0,
            self.provider_name,
            self.provider_id or "",
        )


@dataclass(frozen=True, slots=True)
class MessageState:
    """The fold state of one message: its acceptance (if any yet) and its distinct entries.

    ``entries`` is sorted and free of duplicates; ``first_seen_ms`` is when the projection
    first saw any event of it (it bounds how long an unaccepted message is kept).
    """

    acceptance: Acceptance | None
    entries: tuple[HistoryEntry, ...]
    first_seen_ms: int

    def visible_entries(self) -> tuple[HistoryEntry, ...]:
        """The entries that count: READ is RCS only, so on an SMS message it is left out."""
        if self.acceptance is not None and self.acceptance.channel is Channel.SMS:
            return tuple(e for e in self.entries if e.status is not Status.READ)
        return self.entries


def encode_state(state: MessageState) -> bytes:
    """Encode a state compactly: what the document does not already hold.

    ``{"a": [send ms, phone] | null, "e": [[event key, status code, ms, provider status,
    code, message], ...], "f": first seen ms}``; trailing nulls of an entry are left out.
    """
    acc = state.acceptance
    entries = []
    for e in state.entries:
        row: list[object] = [
            e.event_key,
            STATUS_CODE[e.status],
            e.occurred_ms,
            e.provider_status,
            e.provider_code,
            e.provider_message,
        ]
        while row[-1] is None:
            row.pop()
        entries.append(row)
    head = None if acc is None else [acc.occurred_ms, acc.phone]
    return orjson.dumps({"a": head, "e": entries, "f": state.first_seen_ms})


def _acceptance(head: list[object], document: bytes) -> Acceptance:
    """Rebuild the acceptance from the state's head and the rendered document."""
    ms, phone = head
    msg = orjson.loads(document)["message"]
    ref = msg["reference"]
    provider = msg["provider"]
    return Acceptance(
        occurred_ms=int(ms),  # type: ignore[call-overload]
        channel=Channel(msg["channel"]),
        phone=str(phone),
        reference=(ref.get("service"), ref.get("action"), ref.get("key")) if ref else None,
        segments=msg["sms"]["segments"] if "sms" in msg else None,
        provider_name=provider["name"],
        provider_id=provider["id"] or None,
    )


def decode_stored(raw: bytes) -> MessageState:
    """Decode a stored value (document and state). Raises ``ValueError`` when it is corrupt."""
    document, state_json = split_stored(raw)
    try:
        obj = orjson.loads(state_json)
        head = obj["a"]
        acc = _acceptance(head, document) if head is not None else None
        entries = tuple(
            HistoryEntry(
                status=STATUS_BY_CODE[row[1]],
                occurred_ms=row[2],
                provider_status=row[3] if len(row) > 3 else None,
                provider_code=row[4] if len(row) > 4 else None,
                provider_message=row[5] if len(row) > 5 else None,
                event_key=row[0],
            )
            for row in obj["e"]
        )
        return MessageState(acc, entries, obj["f"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, IndexError) as exc:
        raise ValueError(f"corrupt message state: {exc}") from exc


def join_stored(document: bytes, state: MessageState) -> bytes:
    """Build the STRING value kept at a message key."""
    return document + SEPARATOR + encode_state(state)


def split_stored(raw: bytes) -> tuple[bytes, bytes]:
    """Split a stored value into (document, state JSON); the document is empty when unaccepted."""
    cut = raw.find(SEPARATOR)
    if cut < 0:
        raise ValueError("stored message value has no separator")
    return raw[:cut], raw[cut + 1 :]
