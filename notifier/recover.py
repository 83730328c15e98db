"""``msgstatus notifier recover --since <time>``: take the change log in again from a time.

For a notifier whose Redis state was lost or restored from an older copy: every change since
``since`` is taken in again. What is still recorded as handled is dropped (same sequence);
the rest is queued and delivered by the running notifier, with the ``webhook-id`` it had
before, so a receiver that keeps ids drops what it already processed (docs/push.md).
"""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition

from notifier.endpoints import Directory
from notifier.intake import Intake, decode
from notifier.settings import RecoverSettings
from notifier.state import State
from runtime import redis_client
from schemas.changes import changes_topic


async def recover(settings: RecoverSettings, since_ms: int) -> int:
    """Take in every change record published since ``since_ms`` (epoch ms) up to the end of
    the log as it is now; returns how many deliveries were queued."""
    directory = Directory.load(
        settings.subscriptions_file, settings.signing_secrets, settings.allow_hosts
    )
    topic = changes_topic(settings.topic)
    redis = redis_client.async_client(settings.redis_url)
    intake = Intake(State(redis, settings.namespace, settings.retention_ms), directory)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False
    )
    await consumer.start()
    queued = 0
    try:
        await consumer._client.force_metadata_update()
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not tps:
            return 0
        ends = await consumer.end_offsets(tps)
        found = await consumer.offsets_for_times(dict.fromkeys(tps, since_ms))
        starts = {tp: found[tp].offset if found[tp] else ends[tp] for tp in tps}
        todo = {tp for tp in tps if starts[tp] < ends[tp]}
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, starts[tp])
        while todo:
            batch = await consumer.getmany(timeout_ms=1000, max_records=settings.batch_max_records)
            values = []
            for tp, rs in batch.items():
                values += [r.value for r in rs if r.offset < ends[tp]]
                if rs and rs[-1].offset + 1 >= ends[tp]:
                    todo.discard(tp)
            queued += await intake.take(decode(values))
    finally:
        await consumer.stop()
        await redis.aclose()
    return queued
