"""Reads of the projection: one GET per message, one ZSET range plus one MGET per list page."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import cast

from redis.asyncio import Redis
from redis.exceptions import RedisError

from query_api.params import Cursor
from schemas import keys
from schemas.stored import MessageState, decode_stored

log = logging.getLogger(__name__)


class Reader:
    """Read side of the projection generation the API serves.

    ``redis`` must return bytes. Raises redis-py errors when Redis is unreachable (the handler
    answers 503). The served generation is re-read every ``poll_s`` seconds, so a replay's
    atomic switch is followed without a restart.
    """

    def __init__(
        self, redis: Redis, retention_ms: int, poll_s: float = 1.0, pinned: str = ""
    ) -> None:
        self.redis = redis
        self.retention_ms = retention_ms
        self.generation = pinned or "0"
        self._pinned = pinned
        self._poll_s = poll_s
        self._poller: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Read the served generation once (if Redis answers) and keep following it."""
        if self._pinned:
            return
        with contextlib.suppress(RedisError, OSError):
            await self.refresh_generation()
        self._poller = asyncio.create_task(self._follow(), name="generation-poller")

    async def stop(self) -> None:
        """Stop following the generation pointer."""
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller

    async def refresh_generation(self) -> str:
        """Re-read ``msgstatus:generation`` (``0`` when unset)."""
        value = cast(bytes | None, await self.redis.get(keys.GENERATION_KEY))
        self.generation = value.decode() if value else "0"
        return self.generation

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(self._poll_s)
            try:
                await self.refresh_generation()
            except (RedisError, OSError) as exc:
                log.warning("cannot read the served generation: %s", exc.__class__.__name__)

    async def document(self, message_id: str) -> bytes | None:
        """The rendered ``{"message": ...}`` document, or None when unknown or not accepted."""
        raw = cast(
            bytes | None, await self.redis.get(keys.message_key(self.generation, message_id))
        )
        if raw is None:
            return None
        cut = raw.find(b"\n")
        return raw[:cut] if cut > 0 else None

    async def state(self, message_id: str) -> MessageState | None:
        """The fold state of an accepted message (for its history), or None."""
        raw = cast(
            bytes | None, await self.redis.get(keys.message_key(self.generation, message_id))
        )
        if raw is None:
            return None
        state = decode_stored(raw)
        return state if state.acceptance is not None else None

    async def page(
        self, index_key: str, before_ms: int, count: int, after: Cursor | None
    ) -> tuple[list[bytes], Cursor | None]:
        """Up to ``count`` documents from an index, newest first, ties by id descending.

        Only messages sent strictly before ``before_ms``, or, with a cursor, after the previous
        page's last message. Returns the documents and the next page's cursor, if any.
        Index entries whose message has expired (retention) are skipped and removed.
        """
        high = f"({before_ms}" if after is None else str(after.score)
        docs: list[bytes] = []
        expired: list[str] = []
        last: Cursor | None = None
        more = False
        offset, chunk = 0, count + 1
        while not more:
            rows = cast(
                list[tuple[bytes, float]],
                await self.redis.zrevrangebyscore(
                    index_key, high, "-inf", start=offset, num=chunk, withscores=True
                ),
            )
            offset += len(rows)
            candidates = [(m.decode(), int(sc)) for m, sc in rows]
            if after is not None:
                # Same send time as the previous page's last message: only smaller ids follow.
                candidates = [
                    (m, sc) for m, sc in candidates if sc != after.score or m < after.message_id
                ]
            if candidates:
                raws = cast(
                    list[bytes | None],
                    await self.redis.mget(
                        [keys.message_key(self.generation, m) for m, _ in candidates]
                    ),
                )
                for (mid, score), raw in zip(candidates, raws, strict=True):
                    if raw is None:
                        expired.append(mid)
                        continue
                    cut = raw.find(b"\n")
                    if cut <= 0:
                        continue
                    if len(docs) == count:
                        more = True
                        break
                    docs.append(raw[:cut])
                    last = Cursor(score, mid)
            if len(rows) < chunk:
                break
        if expired:
            await self.redis.zrem(index_key, *expired)
        return docs, last if more else None
