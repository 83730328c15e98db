"""The notifier process: consume the change log into Redis, and deliver from Redis.

Two loops share one process: the intake (a consumer-group member of the change topic that
commits offsets only after the batch's deliveries are queued in Redis) and the dispatcher
(claims due deliveries and attempts them). On SIGTERM both finish what is in hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from prometheus_client import start_http_server
from redis.exceptions import RedisError

from notifier.endpoints import Directory
from notifier.intake import Intake, decode
from notifier.sender import Sender
from notifier.settings import NotifierSettings
from notifier.state import State
from notifier.worker import Dispatcher
from runtime import redis_client
from schemas.changes import ensure_changes_topic

log = logging.getLogger(__name__)

RETRY_MAX_S = 5.0


async def until_taken(intake: Intake, values: list[bytes | None]) -> int:
    """Take a batch in, retrying on Redis errors forever (a batch is never skipped); returns
    how many deliveries were queued."""
    changes = decode(values)
    delay = 0.05
    while True:
        try:
            return await intake.take(changes)
        except (RedisError, OSError) as exc:
            log.warning("taking changes in failed, retrying: %s", type(exc).__name__)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)


class Notifier:
    """Lifecycle: :meth:`run` until :meth:`stop`. Raises on errors a retry cannot cure
    (Kafka unreachable at start, a bad subscriptions file: :class:`ConfigError`)."""

    def __init__(self, settings: NotifierSettings) -> None:
        self.settings = settings
        self._stop = asyncio.Event()
        self.directory = Directory.load(
            settings.subscriptions_file, settings.signing_secrets, settings.allow_hosts
        )

    def stop(self) -> None:
        """Ask both loops to finish."""
        self._stop.set()

    async def run(self) -> None:
        """Run the intake and the dispatcher until stopped."""
        s = self.settings
        topic = await ensure_changes_topic(s)
        # Blocking: a burst of settles waits for a connection instead of failing (the default
        # pool raises MaxConnectionsError at 100).
        redis = redis_client.async_client(s.redis_url, max_connections=64, pool_wait_s=10)
        state = State(redis, s.namespace, s.retention_ms)
        sender = Sender(s.allow_hosts, s.request_timeout_s, s.max_connections)
        await sender.start()
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=s.kafka_bootstrap_servers,
            group_id=s.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=s.batch_max_records,
            fetch_max_wait_ms=100,  # a change waits at most this long in an idle fetch
        )
        await consumer.start()
        dispatcher = Dispatcher(s, state, self.directory, sender)
        deliver = asyncio.create_task(dispatcher.run(self._stop))
        try:
            await self._intake(consumer, Intake(state, self.directory), dispatcher.kick)
        finally:
            self._stop.set()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(s.shutdown_timeout_s + 1):
                    await deliver
            deliver.cancel()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(s.shutdown_timeout_s):
                    await consumer.stop()
            await sender.close()
            await redis.aclose()

    async def _intake(
        self, consumer: AIOKafkaConsumer, intake: Intake, kick: asyncio.Event
    ) -> None:
        s = self.settings
        while not self._stop.is_set():
            batch = await consumer.getmany(
                timeout_ms=s.poll_timeout_ms, max_records=s.batch_max_records
            )
            records = [r for rs in batch.values() for r in rs]
            if not records:
                continue
            if await until_taken(intake, [r.value for r in records]):
                kick.set()
            offsets = {tp: rs[-1].offset + 1 for tp, rs in batch.items() if rs}
            try:
                await consumer.commit(offsets)
            except KafkaError as exc:  # taken in already: a repeat is dropped by sequence
                log.warning("offset commit failed (%s); the batch may be taken in again", exc)


def main(settings: NotifierSettings) -> None:
    """Run the notifier until SIGINT/SIGTERM; Prometheus metrics on ``host:metrics_port``."""
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.host)

    async def runner() -> None:
        notifier = Notifier(settings)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, notifier.stop)
        await notifier.run()

    asyncio.run(runner())
