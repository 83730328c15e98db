"""How every component connects to Redis: reconnect and retry reads after a Redis restart.

A pooled connection that Redis closed (restart, failover, idle timeout) fails on its next
command; with these options redis-py reconnects and retries that command, so a Redis restart
costs a short pause instead of one error per pooled connection. Only idempotent commands are
sent through these clients (reads, and writes that the projection can repeat).
"""

from __future__ import annotations

from typing import Any

from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

HEALTH_CHECK_INTERVAL_S = 5
"""A connection idle this long is PINGed before use, so a dead one is replaced quietly."""


def async_options() -> dict[str, Any]:
    """Keyword arguments for ``redis.asyncio`` clients and pools."""
    return {
        "retry": AsyncRetry(ExponentialBackoff(cap=0.5, base=0.02), 3),
        "health_check_interval": HEALTH_CHECK_INTERVAL_S,
    }


def sync_options() -> dict[str, Any]:
    """Keyword arguments for synchronous ``redis`` clients and pools."""
    return {
        "retry": Retry(ExponentialBackoff(cap=0.5, base=0.02), 3),
        "health_check_interval": HEALTH_CHECK_INTERVAL_S,
    }
