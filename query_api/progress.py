"""Whether the projection the API serves is complete, or a rebuild of it is behind the log.

The projector marks partitions it folds again from the beginning (schemas.rebuild). While any
is marked, reads of messages in them can answer 404 although the messages were accepted, so
``/readyz`` answers 503 with the progress, and ``/metrics`` shows how far the rebuild is
behind. A marker this API saw and that is gone means Redis lost the projection and the
projector has not noticed yet (it does within seconds): not ready either.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, cast

from prometheus_client import Gauge
from redis.asyncio import Redis
from redis.exceptions import RedisError

from schemas import rebuild

log = logging.getLogger(__name__)

REBUILD_LAG = Gauge(
    "msgstatus_projection_rebuild_lag",
    "Records a rebuild of the served projection still has to fold (0: none running)",
)
COMPLETE = Gauge(
    "msgstatus_projection_complete",
    "1 when no rebuild of the served projection is behind the log and none was lost, else 0",
)
COMPLETE.set(1)


class ProjectionProgress:
    """Reads the rebuild marker of the served generation (``generation()``) on demand."""

    POLL_S = 1.0

    def __init__(self, redis: Redis, generation: Callable[[], str]) -> None:
        self.redis = redis
        self.generation = generation
        self.seen: set[str] = set()  # generations whose marker this process has seen
        self.last: dict[str, Any] = {"state": "complete"}

    async def check(self) -> bool:
        """Read the marker; True when the projection is complete. Raises on Redis errors."""
        generation = self.generation()
        marker = cast(dict[bytes, bytes], await self.redis.hgetall(rebuild.rebuild_key(generation)))
        rebuilding = rebuild.parse(marker)
        if marker:
            self.seen.add(generation)
        if rebuilding:
            behind = sum(p.behind for p in rebuilding)
            self.last = {
                "state": "rebuilding",
                "behind": behind,
                "partitions": {
                    p.partition: {"position": p.position, "target": p.target} for p in rebuilding
                },
            }
        elif generation in self.seen and not marker:
            behind = 0
            self.last = {"state": "lost", "detail": "the projection vanished; a rebuild follows"}
        else:
            behind = 0
            self.last = {"state": "complete"}
        complete = not rebuilding and self.last["state"] == "complete"
        REBUILD_LAG.set(behind)
        COMPLETE.set(1 if complete else 0)
        return complete

    def detail(self) -> dict[str, object]:
        """What ``/readyz`` adds to its body: the last state read."""
        return {"projection": self.last}

    async def follow(self) -> None:
        """Re-read every ``POLL_S`` seconds, so ``/metrics`` is fresh between probes."""
        while True:
            with contextlib.suppress(RedisError, OSError):
                await self.check()
            await asyncio.sleep(self.POLL_S)
