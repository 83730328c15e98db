"""Reads of the projection: one GET per message, one Lua script call per list page."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import cast

from redis.asyncio import Redis
from redis.exceptions import RedisError

from query_api.params import Cursor
from query_api.scripts import LIST_PAGE
from schemas import keys
from schemas.stored import SEPARATOR, MessageState, decode_stored

log = logging.getLogger(__name__)


class Reader:
    """Read side of the projection generation the API serves.

    ``redis`` must return bytes. Raises redis-py errors when Redis is unreachable (the handler
    answers 503). The served generation is re-read every ``poll_s`` seconds, so a replay's
    atomic switch is followed without a restart.
    """

    def __init__(self, redis: Redis, poll_s: float = 1.0, pinned: str = "") -> None:
        self.redis = redis
        self.generation = pinned or "0"
        self._pinned = pinned
        self._poll_s = poll_s
        self._poller: asyncio.Task[None] | None = None
        self._list_page = redis.register_script(LIST_PAGE)

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
        cut = raw.find(SEPARATOR)
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
    ) -> tuple[bytes, Cursor | None]:
        """Up to ``count`` documents from an index, newest first, ties by id descending.

        Only messages sent strictly before ``before_ms``, or, with a cursor, after the previous
        page's last message. Returns the documents joined by commas (ready for the list
        document) and the next page's cursor, if any. One round trip (a Lua script); index
        entries whose message has expired (retention) are skipped, then removed.
        """
        high = f"({before_ms}" if after is None else str(after.score)
        reply = cast(
            list[bytes | int],
            await self._list_page(
                keys=[index_key],
                args=[
                    high,
                    count,
                    after.message_id if after else "",
                    after.score if after else "",
                    keys.message_key_prefix(self.generation),
                    keys.MESSAGE_KEY_SUFFIX,
                    SEPARATOR,
                ],
            ),
        )
        joined, more, last_score, last_id, *expired = reply
        if expired:
            await self.redis.zrem(index_key, *expired)
        if not more:
            return cast(bytes, joined), None
        score, mid = cast(bytes, last_score), cast(bytes, last_id)
        return cast(bytes, joined), Cursor(int(float(score)), mid.decode())
