"""List pages of a format-2 generation without a multi-slot script (Redis Cluster safe).

The index is ranged on its own slot, then the documents are fetched with one HGET each in a
pipeline (a cluster client sends each to its node), skipping messages that are gone or
expired; more of the index is read until the page is full or the index ends. The result
equals the single-node script's (query_api.scripts.LIST_PAGE_V2): tests hold both to it.
"""

from __future__ import annotations

import time
from typing import Any, cast

from query_api.params import Cursor
from schemas import packed
from schemas.layout import Layout


async def page(
    redis: Any, layout: Layout, index_key: str, high: str, count: int, *, after: Cursor | None
) -> tuple[bytes, Cursor | None, list[bytes]]:
    """(documents joined by commas, next cursor, ids whose message is gone) of one page.

    ``redis`` is an asyncio client (single node or cluster) returning bytes; ``high`` the
    upper score bound (``(<ms>`` exclusive, or a cursor's score); ``count`` the page size.
    """
    now = int(time.time() * 1000)
    docs: list[bytes] = []
    gone: list[bytes] = []
    last: tuple[float, bytes] | None = None
    offset, chunk = 0, count + 1
    while True:
        batch = cast(
            list[tuple[bytes, float]],
            await redis.zrevrangebyscore(
                index_key, high, "-inf", start=offset, num=chunk, withscores=True
            ),
        )
        offset += len(batch)
        rows = [
            (mid, score)
            for mid, score in batch
            if after is None or not (score == after.score and mid.decode() >= after.message_id)
        ]
        async with redis.pipeline(transaction=False) as pipe:
            for mid, _ in rows:
                pipe.hget(layout.message_key(mid.decode()), mid)
            values = await pipe.execute() if rows else []
        for (mid, score), raw in zip(rows, values, strict=True):
            doc = None if raw is None else packed.document(mid.decode(), raw, now)
            if doc is None:
                if raw is None or packed.expiry_of(raw) <= now:
                    gone.append(mid)
                continue
            if len(docs) == count:
                assert last is not None
                return b",".join(docs), Cursor(int(last[0]), last[1].decode()), gone
            docs.append(doc)
            last = (score, mid)
        if len(batch) < chunk:
            break
    return b",".join(docs), None, gone
