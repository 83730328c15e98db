"""Applying a batch to a format-2 projection generation: the orchestration, nothing else.

Per batch: (1) receipts that name their message only by provider id are kept with that id
and routed among the messages registered under it (projector.parking, by the rule of
projector.provider_routing), or parked until one is; (2) each message's stored value is read
(one HMGET per bucket), the pure fold applied and the result written with a compare-and-set
per bucket, read and folded again on conflict (projector.messages); (3) index entries and
provider registrations of accepted messages are written (projector.indexes, parking), and
the receipts kept with each newly registered provider id are routed again: from (2), applied
where the rule now sends them and withdrawn from the other messages. Every step can run
again after a crash without changing the outcome, so offsets are committed afterwards.

Tenants (schemas.tenancy): each event is written under its record's tenant, with the
generation's layout for that tenant (``Layout(generation, buckets, tenant)``): a batch is
applied tenant by tenant, so messages, indexes, provider ids and parked receipts of two
tenants never meet, in the projector as in a replay. The tenants other than the default one
that a generation holds are listed in its tenants set (``schemas.layout.tenants_key``) for
the expiry sweep.

Redis work runs in a worker thread with redis-py's synchronous client (projector.commands).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, cast

from redis import Redis

from projector import bucket_scripts, changes, checkpoint, fold, indexes, messages, parking
from projector.commands import ScriptedPipelines
from projector.errors import WriteConflict
from projector.logdecode import Event
from projector.report import ApplyReport, Refusal
from runtime import redis_client
from schemas.layout import FORMAT, Layout, meta_key, tenants_key
from schemas.status import Status
from schemas.stored import HistoryEntry
from schemas.tenancy import DEFAULT_TENANT

MAX_CAS_ATTEMPTS = 50


class ProjectionStore:
    """The write side of one format-2 generation (``layout``) in Redis.

    ``redis`` is a synchronous client returning bytes; its pool is thread-safe. Times are
    epoch ms (UTC). :meth:`apply` raises redis-py connection errors (retriable by the caller),
    :class:`WriteConflict` and :class:`projector.errors.CorruptState`.
    """

    def __init__(self, redis: Redis, layout: Layout | str, retention_ms: int) -> None:
        self.redis = redis
        self.layout = layout if isinstance(layout, Layout) else Layout(layout)
        self.generation = self.layout.generation
        self.retention_ms = retention_ms
        self.io = ScriptedPipelines(redis, bucket_scripts.ALL)
        self._layouts: dict[str, Layout] = {self.layout.tenant: self.layout}
        self._listed_tenants: set[str] = set()

    def layout_of(self, tenant: str) -> Layout:
        """The generation's layout for ``tenant``'s keys."""
        found = self._layouts.get(tenant)
        if found is None:
            found = Layout(self.generation, self.layout.buckets, tenant)
            self._layouts[tenant] = found
        return found

    @classmethod
    def from_url(cls, url: str, layout: Layout | str, retention_ms: int) -> ProjectionStore:
        """A store with its own synchronous client of ``url``."""
        client = redis_client.sync_client(url)
        return cls(client, layout, retention_ms)

    async def apply(self, events: Sequence[Event], now_ms: int | None = None) -> ApplyReport:
        """Apply a batch of valid events in a worker thread; see :meth:`apply_sync`."""
        return await asyncio.to_thread(self.apply_sync, events, now_ms)

    def apply_sync(self, events: Sequence[Event], now_ms: int | None = None) -> ApplyReport:
        """Apply a batch of valid events; returns what happened (module docstring)."""
        now = now_ms if now_ms is not None else int(time.time() * 1000)
        tenants = {e.tenant for e in events}
        if tenants <= {DEFAULT_TENANT}:
            return self._apply_tenant(self.layout, events, now)
        others = tenants - {DEFAULT_TENANT} - self._listed_tenants
        if others:
            self.io.execute([("SADD", tenants_key(self.generation), *sorted(others))])
            self._listed_tenants |= others
        report = ApplyReport()
        for tenant in sorted(tenants):
            part = self._apply_tenant(
                self.layout_of(tenant), [e for e in events if e.tenant == tenant], now
            )
            report.applied += part.applied
            report.written += part.written
            report.parked += part.parked
            report.refusals += part.refusals
            report.changes += part.changes
        return report

    def _apply_tenant(self, layout: Layout, events: Sequence[Event], now: int) -> ApplyReport:
        """Apply the events of one tenant under its ``layout``."""
        report = ApplyReport()
        todo = [(e.message_id, e) for e in events if e.message_id is not None]
        receipts = [e for e in events if e.message_id is None]
        if receipts:
            cmds = parking.park_commands(self.io, layout, receipts, self.retention_ms)
            found = parking.resolved(receipts, self.io.execute(cmds))
            report.parked += len(receipts) - len(found)
            todo += found
        withdraw: dict[str, set[str]] = {}
        while todo or withdraw:
            groups: dict[str, list[Event]] = defaultdict(list)
            for mid, event in todo:
                groups[mid].append(event)
            for mid in withdraw:
                groups.setdefault(mid, [])
            folded = self._fold_and_write(layout, groups, now, report, withdraw)
            report.applied += len(todo)
            kept = {
                m: f.after
                for m, f in folded.items()
                if messages.expiry_ms(f.after, self.retention_ms) > now
            }
            rendered = {m: f.view for m, f in folded.items() if f.view is not None}
            report.changes += changes.detect(groups, kept, rendered)
            freed = self._index_and_register(layout, groups, folded, now)
            todo, withdraw = freed.addressed, freed.withdraw
        return report

    def _fold_and_write(
        self,
        layout: Layout,
        groups: dict[str, list[Event]],
        now: int,
        report: ApplyReport,
        withdraw: dict[str, set[str]],
    ) -> dict[str, messages.Folded]:
        """Fold each message's events into its stored value, less the entries ``withdraw``
        names (event keys per message id); compare-and-set, retried."""
        done: dict[str, messages.Folded] = {}
        pending: list[str] = list(groups)
        for attempt in range(MAX_CAS_ATTEMPTS):
            reads, asked = messages.read_commands(layout, pending)
            raws = messages.stored_values(asked, self.io.execute(reads))
            writes = []
            for mid in pending:
                f = messages.fold_message(
                    mid,
                    raws[mid],
                    groups[mid],
                    now,
                    self.retention_ms,
                    withdraw=withdraw.get(mid, ()),
                )
                done[mid] = f
                if f.value is not None:
                    writes.append(f)
            if not writes:
                break
            cmds, ids = messages.cas_commands(self.io, layout, writes)
            pending = messages.conflicts(ids, self.io.execute(cmds))
            report.written += len(writes) - len(pending)
            if not pending:
                break
            # Another writer changed these messages; back off a little (jittered), re-read.
            time.sleep(random.uniform(0, 0.001 * (attempt + 1)))  # noqa: S311 - jitter
        else:
            raise WriteConflict(f"{len(pending)} messages kept changing during the write")
        for mid, f in done.items():
            self._note_refusals(mid, groups[mid], f.refused, report)
        return done

    def _index_and_register(
        self,
        layout: Layout,
        groups: dict[str, list[Event]],
        folded: dict[str, messages.Folded],
        now: int,
    ) -> parking.Freed:
        """Index accepted messages and register their provider ids, each time an acceptance
        is seen (so a crash between the state write and this step heals on redelivery)."""
        cmds: list[tuple[Any, ...]] = []
        fields: list[str] = []
        for mid, f in folded.items():
            acc = f.after.acceptance
            if acc is None or not any(e.status is Status.PROVIDER_ACCEPTANCE for e in groups[mid]):
                continue
            if messages.expiry_ms(f.after, self.retention_ms) <= now:
                continue  # expired: never indexed
            cmds += indexes.add_commands(layout, mid, acc)
            old = f.before.acceptance if f.before is not None else None
            cmds += indexes.displaced_commands(layout, mid, old, acc)
            if acc.provider_id is not None:
                field, register = parking.register_command(self.io, layout, mid, acc)
                cmds.append(register)
                fields.append(field)
        if not cmds:
            return parking.Freed([], {})
        replies = self.io.execute(cmds)
        registered = [r for c, r in zip(cmds, replies, strict=True) if c[0] == "EVALSHA"]
        return parking.freed(fields, cast(list[list[bytes]], registered))

    @staticmethod
    def _note_refusals(
        message_id: str, events: list[Event], refused: Sequence[HistoryEntry], report: ApplyReport
    ) -> None:
        for entry in sorted(refused, key=HistoryEntry.sort_key):
            record = next((e for e in events if fold.entry_of(e) == entry), None)
            report.refusals.append(Refusal(message_id, "READ on an SMS message", record, entry))

    # --- log positions (projector.checkpoint) --------------------------------------------
    async def record_positions(self, positions: dict[tuple[str, int], int]) -> list[int]:
        """Record how far into the log this generation reflects; returns the partitions
        that had no recorded position before. Call after the batch and its dead letters."""
        return await asyncio.to_thread(self.record_positions_sync, positions)

    def record_positions_sync(self, positions: dict[tuple[str, int], int]) -> list[int]:
        """Synchronous :meth:`record_positions`."""
        if not positions:
            return []
        cmd = checkpoint.record_command(self.io, self.layout.positions_key, positions)
        # The meta record again (idempotent): a Redis that lost its data gets it back with
        # the rebuild, so readers find the bucket count.
        meta = meta_key(self.generation)
        replies = self.io.execute(
            [
                cmd,
                ("HSETNX", meta, "format", FORMAT),
                ("HSETNX", meta, "buckets", self.layout.buckets),
            ]
        )
        return checkpoint.new_partitions(replies[0])

    async def missing_positions(self, topic: str, partitions: Sequence[int]) -> list[int]:
        """The partitions among ``partitions`` that have no recorded position."""
        found = await asyncio.to_thread(
            self.redis.hmget, self.layout.positions_key, checkpoint.fields(topic, partitions)
        )
        values = cast(list[Any], found)
        return [p for p, v in zip(partitions, values, strict=True) if v is None]

    async def forget_positions(self, topic: str, partitions: Sequence[int]) -> None:
        """Drop the recorded positions of partitions that are being rebuilt from the start."""
        names = checkpoint.fields(topic, partitions)
        await asyncio.to_thread(self.redis.hdel, self.layout.positions_key, *names)
