"""The status fold of docs/design.md §2 as a pure function: no I/O, no clock.

The projection of a message is a function of the SET of its events: any order of arrival,
any number of duplicates and any replay give the same state and the same document. That is
what makes at-least-once delivery from Kafka and replays harmless.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from projector.logdecode import Event
from schemas.documents import MessageView
from schemas.status import RANK, TIE_ORDER, Channel, Status
from schemas.stored import Acceptance, HistoryEntry, MessageState, event_key


@dataclass(frozen=True, slots=True)
class Applied:
    """The outcome of :func:`apply`: the new state and the entries the fold refused.

    ``refused`` holds READ entries of an SMS message (READ is RCS only, docs/design.md §2); the
    projector dead-letters them. They are refused whichever arrives first, READ or acceptance,
    and stay in the state unseen, so that the result never depends on arrival order.
    """

    state: MessageState
    refused: tuple[HistoryEntry, ...]


def entry_of(event: Event) -> HistoryEntry:
    """The history entry an event contributes (its status, instant and provider words)."""
    return HistoryEntry(
        status=event.status,
        occurred_ms=event.occurred_ms,
        provider_status=event.provider.status,
        provider_code=event.provider.code,
        provider_message=event.provider.message,
        event_key=event_key(event.event_id),
    )


def acceptance_of(event: Event) -> Acceptance:
    """The message identity a PROVIDER_ACCEPTANCE event carries.

    Raises ``ValueError`` for any other status (the event model guarantees the fields).
    """
    if event.status is not Status.PROVIDER_ACCEPTANCE or event.channel is None:
        raise ValueError("not an acceptance event")
    ref = event.reference
    parts = (ref.service, ref.action, ref.key) if ref is not None else None
    sms = event.sms if event.channel is Channel.SMS else None
    return Acceptance(
        occurred_ms=event.occurred_ms,
        channel=event.channel,
        phone=event.phone_number or "",
        reference=parts if parts is not None and any(p is not None for p in parts) else None,
        segments=sms.segments if sms is not None else None,
        provider_name=event.provider.name or "",
        provider_id=event.provider.id or None,
    )


def empty_state(first_seen_ms: int) -> MessageState:
    """The state of a message the projection has not seen yet."""
    return MessageState(acceptance=None, entries=(), first_seen_ms=first_seen_ms)


def apply(state: MessageState, event: Event) -> Applied:
    """Add one event to a message's state (see :func:`apply_all`).

    Used by the tests and :func:`fold`; the projector applies a batch with :func:`apply_all`.
    """
    return apply_all(state, (event,))


def apply_all(state: MessageState, events: Iterable[Event]) -> Applied:
    """Add events to a message's state.

    The winning acceptance is the earliest by ``occurredAt``, then by content; history keeps
    each event (by event id) once, in its earliest form; ``first_seen_ms`` is the minimum
    receive time. All three are commutative and idempotent, so the result does not depend on
    order, batching or repeats.
    """
    acceptance = state.acceptance
    entries = {e.event_key: e for e in state.entries}
    first_seen = state.first_seen_ms
    may_refuse = False
    for event in events:
        if event.status is Status.PROVIDER_ACCEPTANCE:
            candidate = acceptance_of(event)
            if acceptance is None or candidate.sort_key() < acceptance.sort_key():
                acceptance = candidate
            may_refuse = True
        elif event.status is Status.READ:
            may_refuse = True
        entry = entry_of(event)
        known = entries.get(entry.event_key)
        if known is None or entry.sort_key() < known.sort_key():
            entries[entry.event_key] = entry  # one event sent twice: its earliest form counts
        first_seen = min(first_seen, event.received_ms)
    new_state = MessageState(
        acceptance=acceptance,
        entries=tuple(sorted(entries.values(), key=HistoryEntry.sort_key)),
        first_seen_ms=first_seen,
    )
    refused: tuple[HistoryEntry, ...] = ()
    if may_refuse:
        # Kept in the state (an earlier RCS acceptance may yet win), but never shown.
        visible = set(new_state.visible_entries())
        refused = tuple(e for e in new_state.entries if e not in visible)
    return Applied(new_state, refused)


def without(state: MessageState, event_keys: Iterable[str]) -> MessageState:
    """The state without the entries of ``event_keys``: receipts that the provider-id rule
    (projector.provider_routing) now gives to another message. Their time stays in
    ``first_seen_ms`` (it only bounds the expiry)."""
    drop = set(event_keys)
    if not drop:
        return state
    kept = tuple(e for e in state.entries if e.event_key not in drop)
    if len(kept) == len(state.entries):
        return state
    return MessageState(state.acceptance, kept, state.first_seen_ms)


def holder_key(entry: HistoryEntry) -> tuple[int, int, int, str, str, str]:
    """Order of precedence: rank, then later ``occurredAt``, then the fixed tie order.

    The maximum under this key holds the current status (docs/design.md §2); a late lower-rank
    event (SENT after DELIVERED) can therefore never move the status back.
    """
    return (
        RANK[entry.status],
        entry.occurred_ms,
        TIE_ORDER[entry.status],
        entry.provider_status or "",
        entry.provider_code or "",
        entry.provider_message or "",
    )


def view(message_id: str, state: MessageState) -> MessageView | None:
    """The read API's view of a message, or None while it has not been accepted.

    ``providerAcceptanceAt`` comes from the winning acceptance, ``statusChangedAt`` and the
    provider's status, code and message from the entry that holds the current status.
    """
    acceptance = state.acceptance
    if acceptance is None:
        return None
    # An accepted message always has a status; only an event id reused for another event
    # could leave no visible entry, and then the acceptance itself holds the status.
    entries = state.visible_entries() or (
        HistoryEntry(Status.PROVIDER_ACCEPTANCE, acceptance.occurred_ms, None, None, None),
    )
    holder = max(entries, key=holder_key)
    return MessageView(
        message_id=message_id,
        accepted_ms=acceptance.occurred_ms,
        changed_ms=holder.occurred_ms,
        reference=acceptance.reference,
        channel=acceptance.channel,
        status=holder.status,
        provider_name=acceptance.provider_name,
        provider_id=acceptance.provider_id,
        provider_status=holder.provider_status,
        provider_code=holder.provider_code,
        provider_message=holder.provider_message,
        segments=acceptance.segments,
    )


def fold(message_id: str, events: Iterable[Event], first_seen_ms: int) -> Applied:
    """Apply events one by one from an empty state; refused entries are collected.

    The reference the property tests compare :func:`apply_all` against (any order, any
    batching, any repeats); the projector itself does not call it.
    """
    state = empty_state(first_seen_ms)
    refused: set[HistoryEntry] = set()
    for event in events:
        result = apply(state, event)
        state = result.state
        refused.update(result.refused)
    return Applied(state, tuple(sorted(refused, key=HistoryEntry.sort_key)))
