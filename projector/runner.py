"""The projector process: a consumer-group member that applies batches and then commits.

Offsets are committed only after the batch's Redis writes (and dead letters) succeeded:
at-least-once, and the fold makes repeats harmless (SPEC section 5). On SIGTERM it finishes
the batch in hand, commits, and leaves the group.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client import Gauge, start_http_server
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from projector import generations
from projector.batch import process
from projector.settings import ProjectorSettings
from projector.store import ProjectionStore
from schemas.topics import ensure_topics

log = logging.getLogger(__name__)

LAG = Gauge("msgstatus_projector_lag", "Records behind the end of the log", ["partition"])


class Projector:
    """Lifecycle: :meth:`run` until :meth:`stop` is called (or a fatal error propagates)."""

    def __init__(self, settings: ProjectorSettings) -> None:
        self.settings = settings
        self._stop = asyncio.Event()

    def stop(self) -> None:
        """Ask the loop to finish its batch, commit and leave the group."""
        self._stop.set()

    async def run(self) -> None:
        """Consume, apply, commit until stopped. Raises on errors a retry cannot cure."""
        s = self.settings
        await ensure_topics(s)
        redis = Redis.from_url(s.redis_url, decode_responses=False, health_check_interval=10)
        writer = SyncRedis.from_url(s.redis_url, decode_responses=False, health_check_interval=10)
        consumer = AIOKafkaConsumer(
            s.topic,
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
        await consumer.start()
        try:
            await self._loop(consumer, redis, writer, dead_letters)
        finally:
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
    ) -> None:
        s = self.settings
        stores: dict[str, ProjectionStore] = {}
        served = ""
        while not self._stop.is_set():
            batch = await consumer.getmany(
                timeout_ms=s.poll_timeout_ms, max_records=s.batch_max_records
            )
            records = [r for rs in batch.values() for r in rs]
            if not records:
                continue
            # Read after the fetch, so records produced after a replay announced its
            # generation always reach that generation too (projector.generations).
            names = await generations.targets(redis, s.generation)
            if names[0] != served:
                served = names[0]
                log.info("projecting into generation %s", served)
            stores = {n: stores.get(n) or ProjectionStore(writer, n, s.retention_ms) for n in names}
            targets = [stores[n] for n in names]
            await process(records, targets, dead_letters, s.dead_letter_topic, s.redis_retry_max_s)
            offsets = {tp: rs[-1].offset + 1 for tp, rs in batch.items() if rs}
            await consumer.commit(offsets)
            self._record_lag(consumer, offsets)

    @staticmethod
    def _record_lag(consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
        for tp, position in offsets.items():
            end = consumer.highwater(tp)
            if end is not None:
                LAG.labels(str(tp.partition)).set(max(0, end - position))


def main(settings: ProjectorSettings) -> None:
    """Run the projector until SIGINT/SIGTERM; serve Prometheus metrics on ``metrics_port``."""
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr="127.0.0.1")

    async def runner() -> None:
        projector = Projector(settings)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, projector.stop)
        await projector.run()

    asyncio.run(runner())
