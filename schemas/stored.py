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

from dataclasses import dataclass

import orjson

from schemas.status import STATUS_BY_CODE, STATUS_CODE, Channel, Status

SEPARATOR = b"\n"


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One distinct event of a message: status, when it happened (epoch ms, UTC), provider words.

    Two events with the same five values are the same entry: a retried callback is kept once.
    """

    status: Status
    occurred_ms: int
    provider_status: str | None
    provider_code: str | None
    provider_message: str | None

    def sort_key(self) -> tuple[int, int, str, str, str]:
        """Oldest first; equal instants in a fixed order (status code, then provider words)."""
        return (
            self.occurred_ms,
            STATUS_CODE[self.status],
            self.provider_status or "",
            self.provider_code or "",
            self.provider_message or "",
        )


@dataclass(frozen=True, slots=True)
class Acceptance:
    """The identity a PROVIDER_ACCEPTANCE event gives a message (times in epoch ms, UTC)."""

    event_id: str
    occurred_ms: int
    channel: Channel
    phone: str
    reference: tuple[str | None, str | None, str | None] | None
    segments: int | None
    provider_name: str
    provider_id: str | None

    def sort_key(self) -> tuple[int, str, str, str, str, int, str, str]:
        """Among several acceptances of one message the smallest key wins: the earliest, then
        the smallest event id, then the content (two bodies sent under one id stay ordered)."""
        return (
            self.occurred_ms,
            self.event_id,
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
    """Encode a state compactly as JSON arrays (statuses as small codes)."""
    acc = state.acceptance
    acc_json = (
        None
        if acc is None
        else [
            acc.event_id,
            acc.occurred_ms,
            acc.channel.value,
            acc.phone,
            list(acc.reference) if acc.reference is not None else None,
            acc.segments,
            acc.provider_name,
            acc.provider_id,
        ]
    )
    entries = [
        [
            STATUS_CODE[e.status],
            e.occurred_ms,
            e.provider_status,
            e.provider_code,
            e.provider_message,
        ]
        for e in state.entries
    ]
    return orjson.dumps({"a": acc_json, "e": entries, "f": state.first_seen_ms})


def decode_state(raw: bytes) -> MessageState:
    """Decode :func:`encode_state` output. Raises ``ValueError`` on a corrupt state."""
    try:
        obj = orjson.loads(raw)
        acc_json = obj["a"]
        acc = None
        if acc_json is not None:
            eid, ms, channel, phone, ref, segments, pname, pid = acc_json
            acc = Acceptance(
                eid, ms, Channel(channel), phone, tuple(ref) if ref else None, segments, pname, pid
            )
        entries = tuple(
            HistoryEntry(STATUS_BY_CODE[code], ms, ps, pc, pm) for code, ms, ps, pc, pm in obj["e"]
        )
        return MessageState(acc, entries, obj["f"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
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
