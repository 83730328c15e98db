"""Keeps the rebuild marker (schemas.rebuild) of the served generation true while partitions
are folded again from the beginning of the log, so the read API's readiness can tell."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Mapping
from typing import cast

from redis.asyncio import Redis
from redis.typing import EncodableT, FieldT

from projector.batch import until_done
from schemas import rebuild

log = logging.getLogger(__name__)


class RebuildTracker:
    """Partitions of this process being rebuilt, and the marker in Redis that says so.

    ``begin`` when a partition starts again from the beginning, ``adopt`` on assignment (a
    rebuild another process, or an earlier run of this one, left unfinished continues here),
    ``advance`` after every batch, ``forget`` on revocation. All writes retry like batches do.
    """

    def __init__(self, redis: Redis, topic: str, retry_max_s: float) -> None:
        self.redis = redis
        self.topic = topic
        self.retry_max_s = retry_max_s
        self.generation = ""
        self.targets: dict[int, int] = {}  # partition -> end offset the rebuild must reach

    def _switch(self, generation: str) -> None:
        if generation != self.generation:
            self.generation, self.targets = generation, {}

    async def _write(self, generation: str, values: dict[str, str], done: list[str]) -> None:
        key = rebuild.rebuild_key(generation)

        async def step() -> None:
            async with self.redis.pipeline(transaction=True) as pipe:
                fields: dict[FieldT, EncodableT] = {rebuild.SENTINEL: int(time.time() * 1000)}
                fields.update(values)
                pipe.hset(key, mapping=fields)
                if done:
                    pipe.hdel(key, *done)
                await pipe.execute()

        await until_done(step, self.retry_max_s)

    async def begin(self, generation: str, targets: Mapping[int, int]) -> None:
        """Partitions that start from the beginning of the log, with the end they must reach."""
        self._switch(generation)
        self.targets.update(targets)
        if targets:
            log.warning("rebuilding partitions %s of %s from the log", sorted(targets), self.topic)
        await self._write(
            generation,
            {rebuild.field(self.topic, p): rebuild.value(0, t) for p, t in targets.items()},
            [],
        )

    async def adopt(self, generation: str, positions: Mapping[int, int | None]) -> None:
        """On assignment: continue rebuilds the marker names for these partitions.

        ``positions`` are the projection's recorded positions (None: none); an entry whose
        partition already reached its target is cleared at once.
        """
        self._switch(generation)
        marker = cast(
            dict[bytes, bytes],
            await until_done(
                functools.partial(self.redis.hgetall, rebuild.rebuild_key(generation)),
                self.retry_max_s,
            ),
        )
        done = []
        for progress in rebuild.parse(marker):
            topic, _, number = progress.partition.rpartition(":")
            if topic != self.topic or not number.isdigit() or int(number) not in positions:
                continue
            position = positions[int(number)]
            if position is not None and position >= progress.target:
                done.append(progress.partition)
            else:
                self.targets[int(number)] = progress.target
        await self._write(generation, {}, done)

    async def advance(self, generation: str, offsets: Mapping[int, int]) -> None:
        """After a batch: the next offsets of its partitions; finished rebuilds are cleared."""
        if generation != self.generation:
            self._switch(generation)
            return
        moved = {p: o for p, o in offsets.items() if p in self.targets}
        if not moved:
            return
        done = [p for p, o in moved.items() if o >= self.targets[p]]
        values = {
            rebuild.field(self.topic, p): rebuild.value(o, self.targets[p])
            for p, o in moved.items()
            if p not in done
        }
        await self._write(generation, values, [rebuild.field(self.topic, p) for p in done])
        for p in done:
            log.info("partition %d of %s rebuilt up to offset %d", p, self.topic, moved[p])
            del self.targets[p]

    async def keep_present(self, generation: str) -> None:
        """Write the sentinel again (the Healer's periodic check; Redis may have lost it)."""
        self._switch(generation)
        await self._write(generation, {}, [])

    def forget(self, partitions: list[int]) -> None:
        """Revoked partitions: their entries stay for the next owner to adopt."""
        for p in partitions:
            self.targets.pop(p, None)
