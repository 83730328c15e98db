"""The provider map and parked receipts: commands to send and the meaning of their replies.

A receipt may name its message only by (provider name, provider message id). The provider
map holds, per provider id, every message registered under it (message id, send time,
recipient), so a provider that reuses its ids can still be resolved (:func:`choose`). A
receipt whose provider id is not registered yet is parked until its acceptance arrives.
Nothing here talks to Redis: functions take data and return commands or results.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from projector.commands import ScriptedPipelines
from projector.logdecode import Event, LogEvent
from schemas.events import EventRecord
from schemas.layout import Layout, provider_field
from schemas.stored import Acceptance


@dataclass(frozen=True, slots=True)
class Registered:
    """One message under a provider id: its id, send time (epoch ms) and recipient."""

    message_id: str
    sent_ms: int
    phone: str


def encode_entry(entry: Registered) -> bytes:
    """``<16-byte message id><6-byte send ms><phone length><phone>`` (bucket_scripts)."""
    phone = entry.phone.encode()
    return (
        uuid.UUID(entry.message_id).bytes
        + entry.sent_ms.to_bytes(6, "big")
        + bytes((len(phone),))
        + phone
    )


def decode_entries(raw: bytes) -> list[Registered]:
    """The entries of a provider id, in registration order."""
    out, i = [], 0
    while i < len(raw):
        size = raw[i + 22]
        out.append(
            Registered(
                str(uuid.UUID(bytes=raw[i : i + 16])),
                int.from_bytes(raw[i + 16 : i + 22], "big"),
                raw[i + 23 : i + 23 + size].decode(),
            )
        )
        i += 23 + size
    return out


def choose(entries: Sequence[Registered], receipt: Event) -> str | None:
    """The message a receipt addressed by provider id belongs to: the first registered.

    (The single place to refine when a provider reuses its ids.)"""
    del receipt
    return entries[0].message_id if entries else None


def field_of(event: Event) -> str:
    """The provider-map field a receipt names."""
    name, pid = event.provider_ref or ("", "")
    return provider_field(name, pid)


def park_commands(
    io: ScriptedPipelines, layout: Layout, receipts: Sequence[Event], expire_ms: int
) -> list[tuple[Any, ...]]:
    """One PARK call per receipt: look its provider id up, or park it."""
    cmds = []
    for event in receipts:
        field = field_of(event)
        keys_ = [layout.provider_key(field), layout.parked_key(field)]
        cmds.append(io.evalsha("park", keys_, [field, event.event_id, event.to_json(), expire_ms]))
    return cmds


def resolved(receipts: Sequence[Event], replies: Sequence[bytes | None]) -> list[tuple[str, Event]]:
    """(message id, receipt) for every receipt whose provider id is registered."""
    out = []
    for event, reply in zip(receipts, replies, strict=True):
        if reply is not None:
            mid = choose(decode_entries(reply), event)
            if mid is not None:
                out.append((mid, event))
    return out


def register_command(
    io: ScriptedPipelines, layout: Layout, message_id: str, acc: Acceptance
) -> tuple[Any, ...]:
    """REGISTER the message under its acceptance's provider id (which it must have)."""
    assert acc.provider_id is not None
    field = provider_field(acc.provider_name, acc.provider_id)
    entry = encode_entry(Registered(message_id, acc.occurred_ms, acc.phone))
    return io.evalsha("register", [layout.provider_key(field), layout.parked_key(field)],
                      [field, entry])  # fmt: skip


def forget_command(
    io: ScriptedPipelines, layout: Layout, message_id: str, acc: Acceptance
) -> tuple[Any, ...]:
    """Drop an expired message's entry from its provider id (projector.sweep)."""
    assert acc.provider_id is not None
    field = provider_field(acc.provider_name, acc.provider_id)
    mid = uuid.UUID(message_id).bytes
    return io.evalsha("forget", [layout.provider_key(field)], [field, mid])


@dataclass(frozen=True, slots=True)
class Freed:
    """Parked receipts to apply now, and the HDEL that unparks them once applied."""

    addressed: list[tuple[str, Event]]
    unpark: list[tuple[Any, ...]]


def freed(layout: Layout, replies: Sequence[list[bytes]]) -> Freed:
    """Receipts parked under newly registered provider ids, each given its message."""
    addressed: list[tuple[str, Event]] = []
    unpark: list[tuple[Any, ...]] = []
    for reply in replies:
        entries = decode_entries(reply[0])
        fields = reply[1::2]
        if not fields:
            continue
        for raw in reply[2::2]:
            event = EventRecord.from_json(raw)
            mid = choose(entries, event)
            if mid is not None:
                addressed.append((mid, event))
        unpark.append(("HDEL", layout.parked_key(field_of(event)), *fields))
    return Freed(addressed, unpark)


__all__ = ["LogEvent", "Registered", "choose", "freed", "park_commands", "resolved"]
