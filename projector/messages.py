"""Folding events into stored message values: reads, the pure fold, compare-and-set writes.

Functions here take data and return data or commands; projector.store sends them. A write
is a compare-and-set on the value that was read, per bucket (one script call per bucket and
batch), so two projectors writing one message never lose an event: a conflict is read again
and folded again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from projector import fold
from projector.commands import ScriptedPipelines
from projector.errors import CorruptState
from projector.logdecode import Event
from schemas import packed
from schemas.documents import MessageView
from schemas.layout import Layout
from schemas.stored import HistoryEntry, MessageState

NEVER_SEEN_MS = 2**47


@dataclass(frozen=True, slots=True)
class Folded:
    """One message after the fold: what was stored (``raw``, ``before``), the new state, the
    value to write (None: unchanged, or already past its expiry) and the refused entries."""

    message_id: str
    raw: bytes | None
    before: MessageState | None
    after: MessageState
    value: bytes | None
    refused: tuple[HistoryEntry, ...]
    view: MessageView | None = None
    """The new state's view, when it was rendered (a value to write)."""


def expiry_ms(state: MessageState, retention_ms: int) -> int:
    """When a message leaves the projection (epoch ms): max(send, first receipt) + retention.

    Live traffic has both within seconds; a replay re-derives the same expiry from the
    receive times kept in the log; a backfill of old messages is kept for the retention.
    """
    sent = state.acceptance.occurred_ms if state.acceptance else 0
    return max(sent, state.first_seen_ms) + retention_ms


def read_commands(layout: Layout, message_ids: Iterable[str]) -> tuple[list[Any], list[list[str]]]:
    """One HMGET per bucket; returns the commands and the ids each one asks for."""
    by_bucket: dict[str, list[str]] = defaultdict(list)
    for mid in message_ids:
        by_bucket[layout.message_key(mid)].append(mid)
    return [("HMGET", k, *ids) for k, ids in by_bucket.items()], list(by_bucket.values())


def stored_values(asked: Sequence[list[str]], replies: Sequence[list[Any]]) -> dict[str, Any]:
    """Message id -> stored value (or None) from the replies of :func:`read_commands`."""
    out: dict[str, Any] = {}
    for ids, values in zip(asked, replies, strict=True):
        out.update(zip(ids, values, strict=True))
    return out


def decode(message_id: str, raw: bytes | None) -> MessageState | None:
    """The stored state, or None. Raises :class:`CorruptState` rather than overwrite it."""
    if raw is None:
        return None
    try:
        return packed.decode(raw)
    except ValueError as exc:
        raise CorruptState(f"message {message_id}: {exc}") from exc


def fold_message(
    message_id: str,
    raw: bytes | None,
    events: Sequence[Event],
    now_ms: int,
    retention_ms: int,
    *,
    withdraw: Iterable[str] = (),
) -> Folded:
    """Fold ``events`` into the stored value ``raw``, less the entries of the event keys
    ``withdraw`` (receipts the provider-id rule now gives to another message); see
    :class:`Folded`. Only withdrawals from a message that is not stored write nothing."""
    old = decode(message_id, raw)
    if old is None and not events:
        return Folded(message_id, raw, None, fold.empty_state(NEVER_SEEN_MS), None, ())
    applied = fold.apply_all(old or fold.empty_state(NEVER_SEEN_MS), events)
    state = fold.without(applied.state, withdraw)
    value = None
    view = None
    if state != old:
        expire_at = expiry_ms(state, retention_ms)
        if expire_at > now_ms:  # else older than the retention: it would expire at once
            view = fold.view(message_id, state)
            parts = packed.document_parts(view) if view is not None else b""
            value = packed.encode(state, parts, expire_at)
    return Folded(message_id, raw, old, state, value, applied.refused, view)


def cas_commands(
    io: ScriptedPipelines, layout: Layout, writes: Iterable[Folded]
) -> tuple[list[Any], list[list[str]]]:
    """One CAS script call per bucket; returns the commands and the ids each one writes."""
    by_bucket: dict[str, list[Folded]] = defaultdict(list)
    for f in writes:
        by_bucket[layout.message_key(f.message_id)].append(f)
    cmds, ids = [], []
    for key, group in by_bucket.items():
        args: list[Any] = []
        for f in group:
            args += [f.message_id, f.raw or b"", f.value]
        cmds.append(io.evalsha("cas", [key], args))
        ids.append([f.message_id for f in group])
    return cmds, ids


def conflicts(ids: Sequence[list[str]], replies: Sequence[list[int]]) -> list[str]:
    """The message ids another writer changed between our read and our write."""
    out = []
    for group, reply in zip(ids, replies, strict=True):
        out += [mid for mid, ok in zip(group, reply, strict=True) if not ok]
    return out
