"""Format 1 (kept until every deployment has replayed into format 2; docs/operations.md).

Applying events to the Redis projection: compare-and-set per message, idempotent indexes.

Per batch: (1) receipts that name their message only by provider id are kept with that id
and routed among the messages accepted with it (projector.provider_routing), or parked until
one is; (2) each message's stored state is read, the pure fold (projector.fold) applied, and
the result written with a compare-and-set, retried on conflict; (3) index entries and
provider-map registrations of accepted messages are written, idempotently, and the receipts
kept with each provider id routed again (applied where the rule now sends them, withdrawn
from the other messages). Every step can run again after a crash
without changing the outcome, which is what lets offsets be committed only afterwards.

The Redis work runs in a worker thread with redis-py's synchronous client (see
projector.commands), and the event loop keeps fetching from Kafka meanwhile.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any, cast

import msgspec
from redis import Redis

from projector import changes, fold, provider_routing, scripts
from projector.commands import Commands, ScriptedPipelines
from projector.errors import CorruptState, WriteConflict
from projector.logdecode import Event
from projector.report import ApplyReport, Refusal
from runtime import redis_client
from schemas import keys
from schemas.documents import render_message
from schemas.events import EventRecord
from schemas.status import Status
from schemas.stored import (
    Acceptance,
    HistoryEntry,
    MessageState,
    decode_stored,
    event_key,
    join_stored,
)

MAX_CAS_ATTEMPTS = 50
NEVER_SEEN_MS = 2**47


def _with_message(event: Event, message_id: str) -> Event:
    if isinstance(event, EventRecord):
        return event.model_copy(update={"message_id": message_id})
    return msgspec.structs.replace(event, message_id=message_id)


def _index_parts(acc: Acceptance) -> list[tuple[str, str]]:
    """(kind, value) of the index entries an acceptance gives a message: phone, reference key."""
    parts = [("phone", acc.phone)]
    if acc.reference is not None and acc.reference[2]:
        parts.append(("ref", acc.reference[2]))
    return parts


def expiry_ms(state: MessageState, retention_ms: int) -> int:
    """When a message leaves the projection (epoch ms): max(send, first receipt) + retention.

    Live traffic has both within seconds; a replay re-derives the same expiry from the
    receive times kept in the log; a backfill of old messages is kept for the retention.
    """
    sent = state.acceptance.occurred_ms if state.acceptance else 0
    return max(sent, state.first_seen_ms) + retention_ms


class LegacyStore:
    """The write side of one projection generation in Redis.

    ``redis`` is a synchronous client returning bytes (``decode_responses=False``); its pool
    is thread-safe. Times are epoch ms (UTC). :meth:`apply` raises redis-py connection errors
    (retriable by the caller), :class:`WriteConflict` and :class:`CorruptState`.
    """

    def __init__(self, redis: Redis, generation: str, retention_ms: int) -> None:
        self.redis = redis
        self.generation = generation
        self.retention_ms = retention_ms
        self._io = ScriptedPipelines(
            redis,
            {
                "cas": scripts.COMPARE_AND_SET,
                "index": scripts.INDEX_ADD,
                "park": scripts.PARK,
                "register": scripts.REGISTER,
                "positions": scripts.POSITIONS,
            },
        )

    @classmethod
    def from_url(cls, url: str, generation: str, retention_ms: int) -> LegacyStore:
        """A store with its own synchronous client of ``url``."""
        client = redis_client.sync_client(url)
        return cls(client, generation, retention_ms)

    # --- pipelines ------------------------------------------------------------------------
    def _index_key(self, kind: str, value: str) -> str:
        if kind == "phone":
            return keys.phone_index_key(self.generation, value)
        return keys.reference_index_key(self.generation, value)

    # --- the batch ------------------------------------------------------------------------
    async def apply(self, events: Sequence[Event], now_ms: int | None = None) -> ApplyReport:
        """Apply a batch of valid events in a worker thread; see :meth:`apply_sync`."""
        return await asyncio.to_thread(self.apply_sync, events, now_ms)

    def apply_sync(self, events: Sequence[Event], now_ms: int | None = None) -> ApplyReport:
        """Apply a batch of valid events; returns what happened. See the module docstring."""
        now = now_ms if now_ms is not None else int(time.time() * 1000)
        report = ApplyReport()
        addressed = self._resolve(events, now, report)
        self._apply_addressed(addressed, now, report)
        return report

    async def record_positions(self, positions: dict[tuple[str, int], int]) -> list[int]:
        """Record how far into the log this generation reflects ((topic, partition) -> next
        offset); only ever moves forward. Call after the batch and its dead letters.

        Returns the partitions that had no recorded position before this call.
        """
        return await asyncio.to_thread(self.record_positions_sync, positions)

    def record_positions_sync(self, positions: dict[tuple[str, int], int]) -> list[int]:
        """Synchronous :meth:`record_positions`."""
        if not positions:
            return []
        args: list[Any] = []
        for (topic, partition), offset in sorted(positions.items()):
            args += [f"{topic}:{partition}", offset]

        def build(cmds: Commands) -> None:
            self._io.script(cmds, "positions", [keys.positions_key(self.generation)], args)

        absent = self._io.run(build)[0]
        return [int(field.rsplit(b":", 1)[1]) for field in absent]

    async def missing_positions(self, topic: str, partitions: Sequence[int]) -> list[int]:
        """The partitions among ``partitions`` that have no recorded position."""
        fields = [f"{topic}:{p}" for p in partitions]
        found = await asyncio.to_thread(
            self.redis.hmget, keys.positions_key(self.generation), fields
        )
        return [
            p for p, value in zip(partitions, cast(list[Any], found), strict=True) if value is None
        ]

    async def forget_positions(self, topic: str, partitions: Sequence[int]) -> None:
        """Drop the recorded positions of partitions that are being rebuilt from the start."""
        fields = [f"{topic}:{p}" for p in partitions]
        await asyncio.to_thread(self.redis.hdel, keys.positions_key(self.generation), *fields)

    def _resolve(self, events: Sequence[Event], now: int, report: ApplyReport) -> list[Event]:
        """Give each receipt its message id by the provider-id rule, or park it.

        A parked receipt stays for the retention after it was received (its message's send
        time is not known yet), so the parked key's expiry, like every other, follows from
        the events alone: a replay writes the same one, and a receipt older than the
        retention is not kept.
        """
        direct = [e for e in events if e.message_id is not None]
        by_provider = [e for e in events if e.message_id is None]
        if not by_provider:
            return direct
        g = self.generation

        def build(cmds: Commands) -> None:
            for event in by_provider:
                name, pid = event.provider_ref or ("", "")
                self._io.script(
                    cmds,
                    "park",
                    [keys.provider_map_key(g, name, pid), keys.parked_key(g, name, pid)],
                    [event.event_id, event.to_json(), event.received_ms + self.retention_ms],
                )

        for event, flat in zip(by_provider, self._io.run(build), strict=True):
            candidates = provider_routing.decode_candidates(flat, now)
            target = provider_routing.route(event.occurred_ms, event.phone_number, candidates)
            if target is None:
                report.parked += 1
            else:
                direct.append(_with_message(event, target))
        return direct

    def _apply_addressed(self, events: Iterable[Event], now: int, report: ApplyReport) -> None:
        groups: dict[str, list[Event]] = defaultdict(list)
        for event in events:
            assert event.message_id is not None
            groups[event.message_id].append(event)
        if not groups:
            return
        before, after = self._fold_and_write(groups, now, report)
        report.applied += sum(len(v) for v in groups.values())
        kept = {m: s for m, s in after.items() if expiry_ms(s, self.retention_ms) > now}
        report.changes += changes.detect(groups, kept)
        self._index_and_register(groups, before, after, now, report)

    def _read_states(self, ids: list[str]) -> list[bytes | None]:
        # One MGET: reads need no atomicity. (On Redis Cluster this would be per-slot GETs.)
        raws = self.redis.mget([keys.message_key(self.generation, m) for m in ids])
        return cast(list[bytes | None], raws)

    def _fold_and_write(
        self,
        groups: dict[str, list[Event]],
        now: int,
        report: ApplyReport,
        withdraw: dict[str, set[str]] | None = None,
    ) -> tuple[dict[str, MessageState | None], dict[str, MessageState]]:
        """Fold each message's new events into its stored state, less the entries ``withdraw``
        names (event keys per message id); compare-and-set, retried."""
        withdraw = withdraw or {}
        before: dict[str, MessageState | None] = {}
        after: dict[str, MessageState] = {}
        pending = list(groups)
        for attempt in range(MAX_CAS_ATTEMPTS):
            writes: list[tuple[str, bytes, bytes, int]] = []
            for message_id, raw in zip(pending, self._read_states(pending), strict=True):
                old = self._decode(message_id, raw)
                if old is None and not groups[message_id]:
                    continue  # only withdrawals, from a message that is not there
                applied = fold.apply_all(old or fold.empty_state(NEVER_SEEN_MS), groups[message_id])
                state = fold.without(applied.state, withdraw.get(message_id, ()))
                before[message_id], after[message_id] = old, state
                self._note_refusals(message_id, groups[message_id], applied.refused, report)
                if state == old:
                    continue
                expire_at = expiry_ms(state, self.retention_ms)
                if expire_at <= now:
                    continue  # older than the retention: the key would expire at once
                value = join_stored(self._document(message_id, state), state)
                writes.append((message_id, raw or b"", value, expire_at))
            if not writes:
                return before, after

            def build(cmds: Commands, writes: list[tuple[str, bytes, bytes, int]] = writes) -> None:
                for message_id, old_raw, value, expire_at in writes:
                    key = keys.message_key(self.generation, message_id)
                    if old_raw:
                        self._io.script(cmds, "cas", [key], [old_raw, value, expire_at])
                    else:  # a new message: "set if absent" is the compare-and-set
                        cmds.append(("SET", key, value, "PXAT", expire_at, "NX"))

            results = self._io.run(build)
            done = [r in (1, b"OK") for r in results]
            report.written += sum(done)
            pending = [w[0] for w, ok in zip(writes, done, strict=True) if not ok]
            if not pending:
                return before, after
            # Another writer changed these messages; back off a little (jittered) and re-read.
            time.sleep(random.uniform(0, 0.001 * (attempt + 1)))  # noqa: S311 - jitter
        raise WriteConflict(f"{len(pending)} messages kept changing during the write")

    def _decode(self, message_id: str, raw: bytes | None) -> MessageState | None:
        if raw is None:
            return None
        try:
            return decode_stored(raw)
        except ValueError as exc:
            raise CorruptState(f"message {message_id}: {exc}") from exc

    @staticmethod
    def _document(message_id: str, state: MessageState) -> bytes:
        current = fold.view(message_id, state)
        return render_message(current) if current is not None else b""

    @staticmethod
    def _note_refusals(
        message_id: str,
        events: list[Event],
        refused: Iterable[HistoryEntry],
        report: ApplyReport,
    ) -> None:
        for entry in sorted(refused, key=HistoryEntry.sort_key):
            record = next((e for e in events if fold.entry_of(e) == entry), None)
            report.refusals.append(Refusal(message_id, "READ on an SMS message", record, entry))

    def _index_and_register(
        self,
        groups: dict[str, list[Event]],
        before: dict[str, MessageState | None],
        after: dict[str, MessageState],
        now: int,
        report: ApplyReport,
    ) -> None:
        """Index accepted messages and register their provider ids (every time an acceptance
        is seen, so a crash between the state write and this step heals on redelivery)."""
        accepted = [
            (mid, state.acceptance, expiry_ms(state, self.retention_ms))
            for mid, state in after.items()
            if state.acceptance is not None
            and any(e.status is Status.PROVIDER_ACCEPTANCE for e in groups[mid])
        ]
        todo = [entry for entry in accepted if entry[2] > now]  # expired: never indexed
        if not todo:
            return
        g = self.generation
        registrations: list[tuple[str, Acceptance]] = []
        positions: list[int] = []  # where each registration's reply sits in the pipeline

        def build(cmds: Commands) -> None:
            queued = 0
            for mid, acc, expire_at in todo:
                assert acc is not None
                for kind, value in _index_parts(acc):
                    self._io.script(
                        cmds,
                        "index",
                        [self._index_key(kind, value)],
                        [mid, acc.occurred_ms, expire_at],
                    )
                    queued += 1
                old = before.get(mid)
                if old is not None and old.acceptance is not None and old.acceptance != acc:
                    # A different, earlier acceptance displaced this one: drop its entries.
                    for kind, value in set(_index_parts(old.acceptance)) - set(_index_parts(acc)):
                        cmds.append(("ZREM", self._index_key(kind, value), mid))
                        queued += 1
                if acc.provider_id is not None:
                    candidate = provider_routing.Candidate(
                        mid, acc.occurred_ms, acc.phone, expire_at
                    )
                    self._io.script(
                        cmds,
                        "register",
                        [
                            keys.provider_map_key(g, acc.provider_name, acc.provider_id),
                            keys.parked_key(g, acc.provider_name, acc.provider_id),
                        ],
                        [mid, candidate.encode(), expire_at],
                    )
                    registrations.append((mid, acc))
                    positions.append(queued)
                    queued += 1

        results = self._io.run(build)
        self._drain(registrations, [results[i] for i in positions], now, report)

    def _drain(
        self,
        registrations: list[tuple[str, Acceptance]],
        replies: list[list[list[bytes]]],
        now: int,
        report: ApplyReport,
    ) -> None:
        """Route every receipt kept with the newly registered provider ids again: apply each to
        the message the rule gives it now (idempotent) and withdraw it from the other
        candidates (a no-op where it never was)."""
        groups: dict[str, list[Event]] = defaultdict(list)
        withdraw: dict[str, set[str]] = defaultdict(set)
        seen: set[tuple[str, str]] = set()
        # The last reply of a provider id holds every candidate registered in this batch.
        for (_mid, acc), reply in reversed(list(zip(registrations, replies, strict=True))):
            provider = (acc.provider_name.lower(), acc.provider_id or "")
            if provider in seen:
                continue
            seen.add(provider)
            flat_candidates, flat_receipts = reply
            candidates = provider_routing.decode_candidates(flat_candidates, now)
            for raw in flat_receipts[1::2]:
                receipt = EventRecord.from_json(raw)
                target = provider_routing.route(
                    receipt.occurred_ms, receipt.phone_number, candidates
                )
                if target is not None:
                    groups[target].append(_with_message(receipt, target))
                key = event_key(receipt.event_id)
                for other in candidates:
                    if other.message_id != target:
                        withdraw[other.message_id].add(key)
                        groups.setdefault(other.message_id, [])
        if not groups:
            return
        self._fold_and_write(groups, now, report, withdraw)
        report.applied += sum(len(v) for v in groups.values())
