"""Redis server settings the projection's memory figures assume (docs/operations.md, "Redis").

Format 2 keeps about 20 messages per bucket hash, each value 300-500 bytes. Redis stores a
small hash as one compact listpack only while every value is at most
``hash-max-listpack-value`` bytes (default 64); above that it switches to a hash table that
costs about 60 bytes more per message (docs/benchmarks.md, memory rows). msgstatus never
changes a server's configuration; it reports a server that will use the costly encoding.
"""

from __future__ import annotations

import logging
from typing import cast

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

LISTPACK_VALUE_BYTES = 1024
"""The ``hash-max-listpack-value`` msgstatus's own scripts start Redis with, and recommend."""

_MIN_USEFUL = 512


async def check_listpack(redis: Redis) -> int | None:
    """Log a warning when the server's ``hash-max-listpack-value`` is below 512 bytes.

    Returns the server's value, or None when ``CONFIG GET`` is not allowed (managed Redis
    services often rename or forbid it: nothing is said then). Never raises.
    """
    try:
        found = cast(
            dict[bytes | str, bytes | str], await redis.config_get("hash-max-listpack-value")
        )
    except RedisError:
        return None
    raw = next(iter(found.values()), None)
    if raw is None:
        return None
    value = int(raw)
    if value < _MIN_USEFUL:
        log.warning(
            "Redis hash-max-listpack-value is %d: message buckets will be stored as hash "
            "tables, about 60 bytes more per message; set it to %d (docs/operations.md)",
            value,
            LISTPACK_VALUE_BYTES,
        )
    return value
