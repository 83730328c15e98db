"""Where the projector resumes: the position the projection itself records, not Kafka's.

Kafka's committed offsets say what the consumer group acknowledged; the projection's own
positions (``schemas.keys.positions_key``) say what Redis actually reflects. They differ when
Redis lost writes (a restart without persistence, a FLUSHDB): the projector then resumes from
the projection's position, so the lost part is rebuilt from the log instead of staying
silently missing. A projection that is AHEAD of the log (the topic was recreated) is refused.
"""

from __future__ import annotations

import logging
from typing import cast

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from redis.asyncio import Redis

from projector import generations
from projector.batch import until_done
from projector.errors import AheadOfLog
from projector.rebuild import RebuildTracker
from schemas import keys
from schemas.layout import Layout, is_legacy

log = logging.getLogger(__name__)


def positions_key(generation: str) -> str:
    """The positions HASH of a generation of either format."""
    return (
        keys.positions_key(generation)
        if is_legacy(generation)
        else Layout(generation).positions_key
    )


class ResumeFromProjection(ConsumerRebalanceListener):  # type: ignore[misc]
    """On each assignment, seek every partition to the served generation's recorded position.

    A partition the projection has never seen starts from the beginning of the log. Errors
    cannot be raised through aiokafka's callback, so a fatal one is kept in :attr:`fatal`
    for the batch loop to raise.
    """

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        redis: Redis,
        pinned: str,
        retry_max_s: float,
        tracker: RebuildTracker | None = None,
    ) -> None:
        self.consumer = consumer
        self.redis = redis
        self.pinned = pinned
        self.retry_max_s = retry_max_s
        self.tracker = tracker
        self.fatal: AheadOfLog | None = None

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        """Positions are recorded after every batch; a rebuild in progress is left to the
        next owner of the partition (schemas.rebuild)."""
        if self.tracker is not None:
            self.tracker.forget([tp.partition for tp in revoked])

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        """Seek to the projection's positions; beginning when it has none."""
        if not assigned:
            return
        names = await until_done(
            lambda: generations.targets(self.redis, self.pinned), self.retry_max_s
        )
        recorded = cast(
            dict[bytes, bytes],
            await until_done(lambda: self.redis.hgetall(positions_key(names[0])), self.retry_max_s),
        )
        ends: dict[TopicPartition, int] = await self.consumer.end_offsets(list(assigned))
        for tp in sorted(assigned):
            position = recorded.get(f"{tp.topic}:{tp.partition}".encode())
            if position is None:
                await self.consumer.seek_to_beginning(tp)
                log.info(
                    "partition %d: projection has none of it, from the beginning", tp.partition
                )
            elif int(position) > ends[tp]:
                self.fatal = AheadOfLog(
                    f"generation {names[0]} reflects offset {int(position)} of partition "
                    f"{tp.partition}, but the log ends at {ends[tp]}: the topic was recreated? "
                    "Rebuild with `msgstatus replay` into a new generation."
                )
            else:
                self.consumer.seek(tp, int(position))
        if self.tracker is not None:
            await track_rebuilds(self.consumer, self.tracker, names[0], recorded, ends)


async def track_rebuilds(
    consumer: AIOKafkaConsumer,
    tracker: RebuildTracker,
    generation: str,
    recorded: dict[bytes, bytes],
    ends: dict[TopicPartition, int],
) -> None:
    """Mark partitions read from the beginning while the log holds records as rebuilding (and
    continue rebuilds another owner left unfinished), for the API's readiness.

    ``recorded`` are the projection's positions, ``ends`` the end offsets of the assignment.
    """
    positions = {
        tp.partition: int(raw)
        if (raw := recorded.get(f"{tp.topic}:{tp.partition}".encode()))
        else None
        for tp in ends
    }
    await tracker.adopt(generation, positions)
    fresh = [tp for tp in ends if positions[tp.partition] is None]
    starts = await consumer.beginning_offsets(fresh) if fresh else {}
    await tracker.begin(
        generation, {tp.partition: ends[tp] for tp in fresh if ends[tp] > starts[tp]}
    )
