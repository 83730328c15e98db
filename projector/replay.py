"""``msgstatus replay``: rebuild the projection from the event log (docs/design.md §5).

Default: a NEW generation is built beside the served one while the API keeps serving; it is
announced first, so the live projector writes each new batch to it as well, then the log is
read from the start (or from ``--since``) up to the end offsets taken after the announcement.
Once caught up, the read API's pointer is switched atomically and the old generation deleted
after a grace period. ``--in-place`` catches the served generation up instead (safe: the fold
is idempotent). The switch is refused when the new generation could be behind the served one.

``--workers N`` folds disjoint sets of partitions in N processes. The fold is order-
independent and every write a compare-and-set, so they need no coordination, just as two
projectors of one consumer group need none.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from multiprocessing.sharedctypes import Synchronized

from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import Gauge
from redis.asyncio import Redis
from tqdm import tqdm

from projector import generations
from projector.batch import process
from projector.changes import ChangePublisher
from projector.errors import ReplayRefused
from projector.settings import ProjectorSettings
from projector.targets import Store, open_store
from runtime import logs, redis_client
from runtime.redact import secrets_of
from runtime.topics import partition_ids

log = logging.getLogger(__name__)

PROGRESS = Gauge("msgstatus_replay_progress_ratio", "Share of the replay's records applied")


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """What a replay did: its generation, records applied, seconds taken, whether it switched."""

    generation: str
    records: int
    seconds: float
    switched: bool


class _Progress:
    """A progress bar on a terminal (events/s, ETA); plain log lines every 5 s otherwise."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.started, self.last_log = total, 0, time.monotonic(), 0.0
        self.bar = tqdm(total=total, unit="ev", unit_scale=True) if sys.stderr.isatty() else None

    def advance(self, n: int) -> None:
        """Count ``n`` more records applied."""
        self.done += n
        PROGRESS.set(self.done / self.total if self.total else 1.0)
        if self.bar is not None:
            self.bar.update(n)
            return
        now = time.monotonic()
        if now - self.last_log >= 5:
            self.last_log = now
            rate = self.done / max(now - self.started, 1e-9)
            eta = (self.total - self.done) / rate if rate else 0
            log.info(
                "replayed %d/%d events, %.0f ev/s, ETA %.0f s", self.done, self.total, rate, eta
            )

    def close(self) -> None:
        """Finish the bar (terminal only)."""
        if self.bar is not None:
            self.bar.close()


class Replay:
    """One rebuild. Settings as the projector's; ``since_ms`` (epoch ms, UTC) limits the start;
    ``workers``: processes folding disjoint partitions (1: this process alone).

    Raises :class:`ReplayRefused` (no switch made), :class:`GenerationError`
    (another replay switched first) and Kafka/Redis client errors.
    """

    def __init__(
        self,
        settings: ProjectorSettings,
        *,
        since_ms: int | None = None,
        in_place: bool = False,
        grace_s: float = 5.0,
        announce_ttl_s: int = 600,
        workers: int = 1,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.workers = workers
        self.s = settings
        self.since_ms = since_ms
        self.in_place = in_place
        self.grace_s = grace_s
        self.announce_ttl_s = announce_ttl_s

    async def run(self) -> ReplayResult:
        """Rebuild, switch and clean up; see the module docstring."""
        started = time.monotonic()
        redis = redis_client.async_client(self.s.redis_url)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.s.kafka_bootstrap_servers,
            enable_auto_commit=False,
            group_id=None,
            max_poll_records=self.s.batch_max_records,
            fetch_max_bytes=32 * 1024 * 1024,
            max_partition_fetch_bytes=8 * 1024 * 1024,
        )
        await consumer.start()
        try:
            old = self.s.generation or await generations.served(redis)
            target = old if self.in_place else generations.new_generation_id()
            if not self.in_place:
                await generations.mark_building(redis, target, self.announce_ttl_s)
            writer = redis_client.sync_client(self.s.redis_url)
            store = await open_store(
                redis, writer, target, self.s.retention_ms, self.s.projection_buckets
            )
            count = await self._read_to_end(consumer, redis, store, target)
            switched = False
            if not self.in_place:
                await self._switch(redis, old, target)
                switched = True
                await asyncio.sleep(self.grace_s)  # readers still on the old one finish
                removed = await generations.delete(redis, old)
                log.info("deleted %d keys of generation %s", removed, old)
            return ReplayResult(target, count, time.monotonic() - started, switched)
        finally:
            await consumer.stop()
            await redis.aclose()

    async def _positions(
        self, consumer: AIOKafkaConsumer
    ) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
        """Start and end offsets of every partition (end = after the announcement)."""
        parts = await partition_ids(self.s)
        if not parts:
            raise ReplayRefused(f"the event log {self.s.topic!r} does not exist")
        tps = sorted(TopicPartition(self.s.topic, p) for p in parts)
        ends: dict[TopicPartition, int] = await consumer.end_offsets(tps)
        if self.since_ms is None:
            starts: dict[TopicPartition, int] = await consumer.beginning_offsets(tps)
        else:
            found = await consumer.offsets_for_times(dict.fromkeys(tps, self.since_ms))
            starts = {tp: (found[tp].offset if found[tp] else ends[tp]) for tp in tps}
        return starts, ends

    async def _read_to_end(
        self, consumer: AIOKafkaConsumer, redis: Redis, store: Store, target: str
    ) -> int:
        starts, ends = await self._positions(consumer)
        todo = sorted(tp for tp in starts if starts[tp] < ends[tp])
        progress = _Progress(sum(ends[tp] - starts[tp] for tp in todo))
        spans = [(tp.partition, starts[tp], ends[tp]) for tp in todo]
        try:
            if self.workers == 1 or len(spans) <= 1:
                renew = self._renewer(redis, target)
                return await fold_spans(self.s, store, spans, progress.advance, renew)
            return await self._fan_out(redis, target, spans, progress)
        finally:
            progress.close()

    def _renewer(self, redis: Redis, target: str) -> Callable[[], Awaitable[None]]:
        """Renew the announcement a quarter of its lifetime after the last renewal."""
        last = time.monotonic()

        async def renew() -> None:
            nonlocal last
            if not self.in_place and time.monotonic() - last > self.announce_ttl_s / 4:
                await generations.mark_building(redis, target, self.announce_ttl_s)
                last = time.monotonic()

        return renew

    async def _fan_out(
        self,
        redis: Redis,
        target: str,
        spans: list[tuple[int, int, int]],
        progress: _Progress,
    ) -> int:
        """Fold ``spans`` in ``workers`` processes (partitions dealt round-robin, largest
        first); this process renews the announcement and reports progress meanwhile.

        Raises :class:`ReplayRefused` when a worker fails (the others are stopped)."""
        ctx = multiprocessing.get_context("spawn")
        n = min(self.workers, len(spans))
        shares: list[list[tuple[int, int, int]]] = [[] for _ in range(n)]
        for i, span in enumerate(sorted(spans, key=lambda sp: sp[1] - sp[2])):
            shares[i % n].append(span)
        counters = [ctx.Value("q", 0) for _ in range(n)]
        procs = [
            ctx.Process(
                target=_worker_main,
                args=(self.s, target, share, counter),
                name=f"msgstatus-replay-{i}",
                daemon=True,
            )
            for i, (share, counter) in enumerate(zip(shares, counters, strict=True))
        ]
        for proc in procs:
            proc.start()
        renew = self._renewer(redis, target)
        seen = 0
        try:
            while True:
                await asyncio.sleep(0.5)
                done = sum(int(c.value) for c in counters)
                progress.advance(done - seen)
                seen = done
                await renew()
                failed = [p for p in procs if p.exitcode not in (None, 0)]
                if failed:
                    raise ReplayRefused(
                        f"replay worker {failed[0].name} failed (exit code "
                        f"{failed[0].exitcode}); see its log above: not switching"
                    )
                if all(p.exitcode == 0 for p in procs):
                    return seen
        finally:
            for proc in procs:
                if proc.is_alive():
                    proc.terminate()
            for proc in procs:
                await asyncio.to_thread(proc.join, 10)

    async def _switch(self, redis: Redis, old: str, target: str) -> None:
        """Switch the read API to ``target``, unless it could be behind ``old``."""
        if not await generations.still_building(redis, target):
            await generations.unmark_building(redis, target)
            raise ReplayRefused(
                f"generation {target} lost its announcement (the replay took longer than "
                f"{self.announce_ttl_s} s between renewals), so the live projector may have "
                "skipped it: not switching"
            )
        try:
            await generations.switch(redis, old, target)
        finally:
            # Switched, or refused because another generation was switched in: either way
            # the live projector need not write to it any longer.
            await generations.unmark_building(redis, target)
        log.info("the read API now serves generation %s (was %s)", target, old)


async def fold_spans(
    settings: ProjectorSettings,
    store: Store,
    spans: Sequence[tuple[int, int, int]],
    advance: Callable[[int], None],
    renew: Callable[[], Awaitable[None]] | None = None,
) -> int:
    """Fold the records of ``spans`` — (partition, start offset, end offset), end exclusive —
    into ``store``; returns how many records were applied. ``advance`` is told each batch's
    size, ``renew`` called after each batch (the replay's announcement).

    Status changes are published as the projector does (the notifier drops the ones it
    handled already, by sequence). Raises Kafka and Redis client errors that are not transient.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        enable_auto_commit=False,
        group_id=None,
        max_poll_records=settings.batch_max_records,
        fetch_max_bytes=32 * 1024 * 1024,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await consumer.start()
    changes = await ChangePublisher.open(settings)
    try:
        ends = {TopicPartition(settings.topic, p): end for p, _, end in spans}
        todo = set(ends)
        consumer.assign(list(ends))
        for p, start, _ in spans:
            consumer.seek(TopicPartition(settings.topic, p), start)
        applied = 0
        while todo:
            batch = await consumer.getmany(timeout_ms=1000, max_records=settings.batch_max_records)
            records = []
            for tp, rs in batch.items():
                records += [r for r in rs if r.offset < ends[tp]]
                if rs and rs[-1].offset + 1 >= ends[tp]:
                    todo.discard(tp)
            if records:
                await process(records, [store], None, settings.dead_letter_topic, changes=changes)
                applied += len(records)
                advance(len(records))
            if renew is not None:
                await renew()
        return applied
    finally:
        await changes.close()
        await consumer.stop()


def _worker_main(
    settings: ProjectorSettings,
    target: str,
    spans: list[tuple[int, int, int]],
    counter: Synchronized[int],
) -> None:
    """A replay worker process: fold ``spans`` into ``target``, counting into ``counter``."""
    logs.configure(settings.log_level, settings.log_format, secrets_of(settings))

    def advance(n: int) -> None:
        with counter.get_lock():
            counter.value += n

    async def run() -> None:
        redis = redis_client.async_client(settings.redis_url)
        writer = redis_client.sync_client(settings.redis_url)
        try:
            store = await open_store(
                redis, writer, target, settings.retention_ms, settings.projection_buckets
            )
            await fold_spans(settings, store, spans, advance)
        finally:
            await redis.aclose()
            writer.close()

    asyncio.run(run())
