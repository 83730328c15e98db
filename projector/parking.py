"""The provider map and the receipts kept with provider ids: commands and their replies.

A receipt may name its message only by (provider name, provider message id). The provider
map holds, per provider id, every message registered under it (message id, send time,
recipient), so a provider that reuses its ids can still be resolved (:func:`choose`, by the
rule of projector.provider_routing). Every such receipt is kept with its provider id for the
retention after it was received (``pk`` keys): parked while no message has the id yet, and
routed again whenever a registration changes the answer (:func:`freed`: applied to its new
message, withdrawn from the others). Nothing here talks to Redis: functions take data and
return commands or results.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from projector import provider_routing
from projector.commands import ScriptedPipelines
from projector.logdecode import Event, LogEvent
from schemas.events import EventRecord
from schemas.layout import Layout, provider_field
from schemas.stored import Acceptance, event_key


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
    """The message a receipt addressed by provider id belongs to (projector.provider_routing:
    recipient, then the latest send time not after the receipt), or None without entries.

    Entries of expired messages leave with the sweep (:func:`forget_command`), together with
    their message, so every entry is a live candidate (no expiry of its own: 0)."""
    candidates = [provider_routing.Candidate(e.message_id, e.sent_ms, e.phone, 0) for e in entries]
    return provider_routing.route(receipt.occurred_ms, receipt.phone_number, candidates)


def field_of(event: Event) -> str:
    """The provider-map field a receipt names."""
    name, pid = event.provider_ref or ("", "")
    return provider_field(name, pid)


def park_commands(
    io: ScriptedPipelines, layout: Layout, receipts: Sequence[Event], retention_ms: int
) -> list[tuple[Any, ...]]:
    """One PARK call per receipt: keep it with its provider id until the retention after it
    was received (so a replay writes the same expiry), and look the provider id up."""
    cmds = []
    for event in receipts:
        field = field_of(event)
        keys_ = [layout.provider_key(field), layout.parked_key(field)]
        expire_ms = event.received_ms + retention_ms
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
) -> tuple[str, tuple[Any, ...]]:
    """(provider field, REGISTER call) of the message under its acceptance's provider id
    (which it must have)."""
    assert acc.provider_id is not None
    field = provider_field(acc.provider_name, acc.provider_id)
    entry = encode_entry(Registered(message_id, acc.occurred_ms, acc.phone))
    keys_ = [layout.provider_key(field), layout.parked_key(field)]
    return field, io.evalsha("register", keys_, [field, entry])


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
    """Kept receipts routed again: (message id, receipt) to apply, and per message id the
    event keys to withdraw (the receipts the rule now gives to another message)."""

    addressed: list[tuple[str, Event]]
    withdraw: dict[str, set[str]]


def freed(fields: Sequence[str], replies: Sequence[list[bytes]]) -> Freed:
    """Route every receipt kept with the provider ``fields`` just registered (REGISTER's
    replies, in the order sent): to the message the rule gives it now, withdrawn from every
    other entry of its provider id. The last reply of a field holds every entry registered
    in the batch (the calls run in order), so only that one is used."""
    last: dict[str, list[bytes]] = dict(zip(fields, replies, strict=True))
    addressed: list[tuple[str, Event]] = []
    withdraw: dict[str, set[str]] = {}
    for reply in last.values():
        entries = decode_entries(reply[0])
        for raw in reply[2::2]:
            event = EventRecord.from_json(raw)
            target = choose(entries, event)
            if target is not None:
                addressed.append((target, event))
            key = event_key(event.event_id)
            for entry in entries:
                if entry.message_id != target:
                    withdraw.setdefault(entry.message_id, set()).add(key)
    return Freed(addressed, withdraw)


__all__ = ["LogEvent", "Registered", "choose", "freed", "park_commands", "resolved"]
