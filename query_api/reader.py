"""Reads of the projection: one GET per message, one Lua script call per list page."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import RedisError

from projector import generations
from query_api import pages
from query_api.params import Cursor
from query_api.scripts import LIST_PAGE, LIST_PAGE_V2
from schemas import keys, packed
from schemas.layout import Layout, is_legacy
from schemas.stored import SEPARATOR, MessageState, decode_stored
from schemas.tenancy import DEFAULT_TENANT

log = logging.getLogger(__name__)

NO_INDEX = ""
"""The index key of a tenant other than the default one in a format-1 generation, which holds
only the default tenant's messages: it lists nothing."""


class Reader:
    """Read side of the projection generation the API serves.

    ``redis`` must return bytes. Raises redis-py errors when Redis is unreachable (the handler
    answers 503). The served generation is re-read every ``poll_s`` seconds, so a replay's
    atomic switch is followed without a restart.
    """

    def __init__(
        self,
        redis: Redis,
        retention_ms: int,
        poll_s: float = 1.0,
        pinned: str = "",
        per_slot_lists: bool = False,
    ) -> None:
        self.redis = redis
        self.retention_ms = retention_ms
        self.generation = pinned or generations.DEFAULT_GENERATION
        self.layout: Layout | None = None
        """The served generation's layout; None for format 1 (or before its first write)."""
        self.per_slot_lists = per_slot_lists
        self._pinned = pinned
        self._poll_s = poll_s
        self._poller: asyncio.Task[None] | None = None
        self._tenant_layouts: dict[str, Layout] = {}
        self._list_page = redis.register_script(LIST_PAGE)
        self._list_page_v2 = redis.register_script(LIST_PAGE_V2)

    async def start(self) -> None:
        """Read the served generation once (if Redis answers) and keep following it."""
        with contextlib.suppress(RedisError, OSError):
            await self._load_layout()
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
        """Re-read the served generation (projector.generations.served) and its layout."""
        name = await generations.served(self.redis)
        if name != self.generation or (self.layout is None and not is_legacy(name)):
            self.generation = name
            await self._load_layout()
        return self.generation

    async def _load_layout(self) -> None:
        self.layout = await generations.existing_layout(self.redis, self.generation)

    def _tenant_layout(self, layout: Layout, tenant: str) -> Layout:
        """``layout`` for ``tenant`` (its keys: schemas.layout), built once per generation."""
        if tenant == layout.tenant:
            return layout
        found = self._tenant_layouts.get(tenant)
        if found is None or found.generation != layout.generation:
            found = Layout(layout.generation, layout.buckets, tenant)
            self._tenant_layouts[tenant] = found
        return found

    def index_key(self, kind: str, value: str, tenant: str = DEFAULT_TENANT) -> str:
        """The served generation's phone (``p``) or reference (``r``) index key of ``value``
        in ``tenant``'s part of the projection. A format-1 generation has only the default
        tenant's: another tenant's index key there names nothing (:data:`NO_INDEX`)."""
        if is_legacy(self.generation):
            if tenant != DEFAULT_TENANT:
                return NO_INDEX
            if kind == "p":
                return keys.phone_index_key(self.generation, value)
            return keys.reference_index_key(self.generation, value)
        layout = self.layout or Layout(self.generation)
        return self._tenant_layout(layout, tenant).index_key(kind, value)

    async def _raw(self, message_id: str, tenant: str = DEFAULT_TENANT) -> bytes | None:
        """The stored value of a format-2 message of ``tenant``, or None."""
        if self.layout is None:
            if is_legacy(self.generation):
                raise AssertionError("format 1 has no bucketed values")
            await self._load_layout()
            if self.layout is None:
                return None  # nothing written to this generation yet
        key = self._tenant_layout(self.layout, tenant).message_key(message_id)
        return cast(bytes | None, await self.redis.hget(key, message_id))

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(self._poll_s)
            try:
                await self.refresh_generation()
            except (RedisError, OSError) as exc:
                log.warning("cannot read the served generation: %s", exc.__class__.__name__)

    async def document(self, message_id: str, tenant: str = DEFAULT_TENANT) -> bytes | None:
        """The rendered ``{"message": ...}`` document of a message of ``tenant``, or None
        when unknown (to that tenant) or not accepted."""
        if not is_legacy(self.generation):
            value = await self._raw(message_id, tenant)
            if value is None:
                return None
            return packed.document(message_id, value, int(time.time() * 1000))
        if tenant != DEFAULT_TENANT:
            return None
        raw = cast(
            bytes | None, await self.redis.get(keys.message_key(self.generation, message_id))
        )
        if raw is None:
            return None
        cut = raw.find(SEPARATOR)
        return raw[:cut] if cut > 0 else None

    async def state(self, message_id: str, tenant: str = DEFAULT_TENANT) -> MessageState | None:
        """The fold state of an accepted message of ``tenant`` (for its history), or None."""
        if tenant != DEFAULT_TENANT and is_legacy(self.generation):
            return None
        if not is_legacy(self.generation):
            value = await self._raw(message_id, tenant)
            if value is None or packed.expiry_of(value) <= time.time() * 1000:
                return None
            found = packed.decode(value)
            return found if found.acceptance is not None else None
        raw = cast(
            bytes | None, await self.redis.get(keys.message_key(self.generation, message_id))
        )
        if raw is None:
            return None
        state = decode_stored(raw)
        return state if state.acceptance is not None else None

    async def page(
        self,
        index_key: str,
        before_ms: int,
        count: int,
        after: Cursor | None,
        tenant: str = DEFAULT_TENANT,
    ) -> tuple[bytes, Cursor | None]:
        """Up to ``count`` documents from an index, newest first, ties by id descending.

        Only messages sent strictly before ``before_ms``, or, with a cursor, after the previous
        page's last message. Returns the documents joined by commas (ready for the list
        document) and the next page's cursor, if any. One round trip (a Lua script); index
        entries whose message has expired (retention) are skipped, then removed. ``index_key``
        and ``tenant`` name the same tenant's part (:meth:`index_key`).
        """
        high = f"({before_ms}" if after is None else str(after.score)
        if index_key == NO_INDEX:
            return b"", None
        if not is_legacy(self.generation):
            return await self._page_v2(index_key, high, count, after, tenant)
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
        return await self._finish(index_key, reply)

    async def _finish(
        self, index_key: str, reply: list[bytes | int]
    ) -> tuple[bytes, Cursor | None]:
        """Remove the expired ids a list script reported; the page and its next cursor."""
        joined, more, last_score, last_id, *expired = reply
        if expired:
            await self.redis.zrem(index_key, *expired)
        if not more:
            return cast(bytes, joined), None
        score, mid = cast(bytes, last_score), cast(bytes, last_id)
        return cast(bytes, joined), Cursor(int(float(score)), mid.decode())

    async def _page_v2(
        self, index_key: str, high: str, count: int, after: Cursor | None, tenant: str
    ) -> tuple[bytes, Cursor | None]:
        """A format-2 page: the single-node script, or the per-slot path (query_api.pages)."""
        if self.layout is None:
            await self._load_layout()
            if self.layout is None:
                return b"", None
        layout = self._tenant_layout(self.layout, tenant)
        if self.per_slot_lists:
            joined, cursor, gone = await pages.page(
                self.redis, layout, index_key, high, count, after=after
            )
            if gone:
                await self.redis.zrem(index_key, *gone)
            return joined, cursor
        reply = cast(
            list[Any],
            await self._list_page_v2(
                keys=[index_key],
                args=[
                    high,
                    count,
                    after.message_id if after else "",
                    after.score if after else "",
                    layout.message_prefix,
                    layout.buckets,
                    int(time.time() * 1000),
                ],
            ),
        )
        more, last_score, last_id, n_expired = reply[:4]
        joined = packed.render_page(reply[4 + n_expired])
        return await self._finish(
            index_key, [joined, more, last_score, last_id, *reply[4 : 4 + n_expired]]
        )
