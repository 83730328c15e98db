"""The projector process: a consumer-group member that applies batches and then commits.

Offsets are committed only after the batch's Redis writes (and dead letters) succeeded:
at-least-once, and the fold makes repeats harmless (docs/design.md §5). On SIGTERM it finishes
the batch in hand, commits, and leaves the group.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import time
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client import Gauge, start_http_server
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from projector import generations, sweep
from projector.batch import process, until_done
from projector.changes import ChangePublisher
from projector.letters import DeadLetterLedger
from projector.positions import ResumeFromProjection
from projector.rebuild import RebuildTracker
from projector.settings import ProjectorSettings
from projector.store import ProjectionStore
from projector.targets import Store, open_store
from runtime import redis_client, redis_config
from runtime.gc_tuning import tune_gc
from runtime.topics import ensure_topics

log = logging.getLogger(__name__)

LAG = Gauge("msgstatus_projector_lag", "Records behind the end of the log", ["partition"])


class Healer:
    """Notices that the projection lost positions it had recorded, and rebuilds those partitions.

    Redis that restarted without persistence (or was flushed) no longer holds the positions
    the projector wrote: seen on the next batch of a partition (its position was absent) or
    by a check every ``CHECK_EVERY_S`` seconds for idle partitions. Those partitions are read
    again from the beginning of the log; their positions start from nothing, so a crash
    during the rebuild resumes it.
    """

    CHECK_EVERY_S = 2.0

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        topic: str,
        retry_max_s: float,
        tracker: RebuildTracker | None = None,
    ) -> None:
        self.consumer = consumer
        self.topic = topic
        self.retry_max_s = retry_max_s
        self.tracker = tracker
        self.recorded: set[tuple[str, int]] = set()  # (generation, partition) we wrote
        self._checked = time.monotonic()

    async def after_batch(self, store: Store, new_partitions: list[int]) -> None:
        """Heal partitions whose position was absent although this process had written it."""
        lost = [p for p in new_partitions if (store.generation, p) in self.recorded]
        self.recorded.update((store.generation, p) for p in new_partitions)
        if lost:
            # Redis rarely loses one partition alone: look at every other one now, so they are
            # all marked as rebuilding at once (the API must not read "complete" meanwhile).
            others = [p for g, p in self.recorded if g == store.generation and p not in lost]
            if others:
                lost += await until_done(
                    functools.partial(store.missing_positions, self.topic, others),
                    self.retry_max_s,
                )
            await self._rebuild(store, lost)

    async def check(self, store: Store, still_served: Callable[[], Awaitable[bool]]) -> bool:
        """Every few seconds, look for recorded positions that vanished (idle partitions).

        Returns False, and rebuilds nothing, when ``store``'s generation is no longer the one
        to write (a replay switched to another and deletes this one: its positions vanish
        because it is gone, not because Redis lost them)."""
        if time.monotonic() - self._checked < self.CHECK_EVERY_S:
            return True
        self._checked = time.monotonic()
        if not await still_served():
            self.recorded = {(g, p) for g, p in self.recorded if g != store.generation}
            return False
        mine = [p for g, p in self.recorded if g == store.generation]
        if mine:
            lost = await until_done(
                functools.partial(store.missing_positions, self.topic, mine), self.retry_max_s
            )
            if lost:
                await self._rebuild(store, lost)
        if self.tracker is not None:  # after marking lost partitions: never an empty marker
            await self.tracker.keep_present(store.generation)
        return True

    async def _rebuild(self, store: Store, lost: list[int]) -> None:
        log.warning("the projection lost partitions %s; rebuilding them from the log", lost)
        await until_done(
            functools.partial(store.forget_positions, self.topic, lost), self.retry_max_s
        )
        self.recorded.difference_update((store.generation, p) for p in lost)
        tps = [TopicPartition(self.topic, p) for p in lost]
        if self.tracker is not None:
            ends: dict[TopicPartition, int] = await self.consumer.end_offsets(tps)
            await self.tracker.begin(store.generation, {tp.partition: ends[tp] for tp in tps})
        await self.consumer.seek_to_beginning(*tps)


class Projector:
    """Lifecycle: :meth:`run` until :meth:`stop` is called (or a fatal error propagates)."""

    def __init__(self, settings: ProjectorSettings) -> None:
        self.settings = settings
        self._stop = asyncio.Event()
        self._next_sweep = 0.0

    def stop(self) -> None:
        """Ask the loop to finish its batch, commit and leave the group."""
        self._stop.set()

    async def run(self) -> None:
        """Consume, apply, commit until stopped. Raises on errors a retry cannot cure."""
        s = self.settings
        await ensure_topics(s)
        redis = redis_client.async_client(s.redis_url)
        await redis_config.check_listpack(redis)
        writer = redis_client.sync_client(s.redis_url)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=s.kafka_bootstrap_servers,
            group_id=s.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=s.batch_max_records,
            fetch_max_bytes=16 * 1024 * 1024,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        dead_letters = AIOKafkaProducer(
            bootstrap_servers=s.kafka_bootstrap_servers, acks="all", enable_idempotence=True
        )
        await dead_letters.start()
        ledger = await DeadLetterLedger.load(s.kafka_bootstrap_servers, s.dead_letter_topic)
        changes = await ChangePublisher.open(s)
        await consumer.start()
        tracker = RebuildTracker(redis, s.topic, s.redis_retry_max_s)
        resume = ResumeFromProjection(consumer, redis, s.generation, s.redis_retry_max_s, tracker)
        consumer.subscribe([s.topic], listener=resume)
        try:
            await self._loop(
                consumer, redis, writer, dead_letters, resume, ledger=ledger, changes=changes
            )
        finally:
            await changes.close(s.shutdown_timeout_s)
            with contextlib.suppress(Exception):
                async with asyncio.timeout(s.shutdown_timeout_s):
                    await consumer.stop()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(s.shutdown_timeout_s):
                    await dead_letters.stop()
            await redis.aclose()
            writer.close()

    async def _loop(
        self,
        consumer: AIOKafkaConsumer,
        redis: Redis,
        writer: SyncRedis,
        dead_letters: AIOKafkaProducer,
        resume: ResumeFromProjection,
        *,
        ledger: DeadLetterLedger,
        changes: ChangePublisher,
    ) -> None:
        s = self.settings
        stores: dict[str, Store] = {}
        tracker = resume.tracker
        healer = Healer(consumer, s.topic, s.redis_retry_max_s, tracker)
        served = ""
        commit: asyncio.Task[None] | None = None
        while not self._stop.is_set():
            batch = await consumer.getmany(
                timeout_ms=s.poll_timeout_ms, max_records=s.batch_max_records
            )
            if resume.fatal is not None:
                raise resume.fatal
            if served:

                async def still_served(current: str = served) -> bool:
                    names = await until_done(
                        functools.partial(generations.targets, redis, s.generation),
                        s.redis_retry_max_s,
                    )
                    return names[0] == current

                if await healer.check(stores[served], still_served):
                    await self._sweep(stores[served])
                else:
                    log.info("generation %s is no longer served", served)
                    served = ""
            records = [r for rs in batch.values() for r in rs]
            if not records:
                continue
            # Read after the fetch, so records produced after a replay announced its
            # generation always reach that generation too (projector.generations).
            names = await until_done(
                functools.partial(generations.targets, redis, s.generation), s.redis_retry_max_s
            )
            if names[0] != served:
                served = names[0]
                log.info("projecting into generation %s", served)
            stores = {
                n: stores.get(n)
                or await open_store(redis, writer, n, s.retention_ms, s.projection_buckets)
                for n in names
            }
            report = await process(
                records,
                [stores[n] for n in names],
                dead_letters,
                s.dead_letter_topic,
                s.redis_retry_max_s,
                ledger=ledger,
                changes=changes,
            )
            offsets = {tp: rs[-1].offset + 1 for tp, rs in batch.items() if rs}
            # The commit runs while the next batch is fetched and applied (one in flight):
            # it only ever covers applied records, and the projection's own positions, not
            # these offsets, decide where a restart resumes (projector.positions).
            await self._settle(commit)
            # A rebalance while the batch was applied may have taken partitions away: their
            # new owner reads them again from the projection's positions (the fold makes the
            # repeat harmless), and committing or measuring them here would fail.
            owned = consumer.assignment()
            offsets = {tp: o for tp, o in offsets.items() if tp in owned}
            commit = asyncio.create_task(consumer.commit(offsets)) if offsets else None
            self._record_lag(consumer, offsets)
            if tracker is not None:
                await tracker.advance(served, {tp.partition: o for tp, o in offsets.items()})
            await healer.after_batch(stores[served], report.new_partitions)
        await self._settle(commit)

    async def _sweep(self, store: Store) -> None:
        """Every ``sweep_every_s``, sweep the next buckets of the served generation (format 2)."""
        s = self.settings
        now = time.monotonic()
        if not isinstance(store, ProjectionStore) or now < self._next_sweep:
            return
        self._next_sweep = now + s.sweep_every_s
        step = sweep.buckets_per_step(store.layout.buckets, s.sweep_every_s, s.sweep_cycle_s)
        removed = await until_done(
            lambda: asyncio.to_thread(sweep.sweep_step, store, step, int(time.time() * 1000)),
            s.redis_retry_max_s,
        )
        if removed:
            log.info("swept %d expired messages", removed)

    @staticmethod
    async def _settle(commit: asyncio.Task[None] | None) -> None:
        """Wait for the previous commit; a commit refused after a rebalance is only logged."""
        if commit is None:
            return
        try:
            await commit
        except KafkaError as exc:
            log.warning("offset commit failed (%s); positions in Redis still hold", exc)

    @staticmethod
    def _record_lag(consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
        for tp, position in offsets.items():
            end = consumer.highwater(tp)
            if end is not None:
                LAG.labels(str(tp.partition)).set(max(0, end - position))


def main(settings: ProjectorSettings) -> None:
    """Run the projector until SIGINT/SIGTERM; serve Prometheus metrics on ``host:metrics_port``."""
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.host)
    tune_gc()

    async def runner() -> None:
        projector = Projector(settings)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, projector.stop)
        await projector.run()

    asyncio.run(runner())
