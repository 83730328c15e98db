"""How every component connects to Redis: one node or a Redis Cluster, reconnecting and
retrying after a restart or a failover.

``MSGSTATUS_REDIS_URL`` names a single Redis (``redis://host:port/db``, ``rediss://`` for TLS;
the default) or a Redis Cluster: ``redis+cluster://host:port[,host:port...]`` (``rediss+cluster``
for TLS, optional ``user:password@``). The cluster's nodes are seeds: any one that answers is
enough, the client learns the slot map from it and follows MOVED/ASK redirections and
failovers itself. A cluster has no databases: a path other than empty or ``/0`` is refused.

:func:`async_client` and :func:`sync_client` are the only places that create clients. On a
cluster they return redis-py's ``RedisCluster``, typed as the single-node ``Redis`` the
callers are written against: both serve the same commands, and the few places that differ
(scripts in pipelines, ``MGET`` across slots) ask :func:`is_cluster`. Every command must then
touch one slot, which the key layout's hash tags (``{...}``) arrange.

A pooled connection that Redis closed (restart, failover, idle timeout) fails on its next
command; with these options redis-py reconnects and retries that command, so a Redis restart
costs a short pause instead of one error per pooled connection. Only idempotent commands are
sent through these clients (reads, and writes that the projection can repeat).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import unquote

import redis
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode as AsyncClusterNode
from redis.asyncio.cluster import ClusterPipeline as AsyncClusterPipeline
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.cluster import ClusterNode, ClusterPipeline
from redis.exceptions import (
    AskError,
    ClusterDownError,
    RedisClusterException,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry
from redis.typing import EncodableT


class ClusterUnavailableError(RedisConnectionError):
    """The cluster could not serve a command now: no node reachable, slots without a master
    (``CLUSTERDOWN``, a failover under way), redirections that did not settle within the
    client's retries. A ``ConnectionError``, so every caller that survives an unreachable
    Redis (503, the projector's batch retry) survives these too."""


_OUTAGE = (ClusterDownError, TryAgainError, AskError, SlotNotCoveredError)
"""Cluster errors that a later retry cures (``AskError`` covers ``MovedError``)."""


_OUTAGE_WORDS = ("cannot be connected", "not covered")
"""What redis-py's bare ``RedisClusterException`` says when no seed answers or slots are
uncovered; with other words (keys of several slots, ...) it reports a mistake, not an outage."""


def _outage(exc: Exception) -> bool:
    if isinstance(exc, _OUTAGE):
        return True
    return type(exc) is RedisClusterException and any(w in str(exc) for w in _OUTAGE_WORDS)


class _AsyncCluster(AsyncRedisCluster):
    """``RedisCluster`` whose outage errors are :class:`ClusterUnavailableError`."""

    async def execute_command(self, *args: EncodableT, **kwargs: Any) -> Any:
        try:
            return await super().execute_command(*args, **kwargs)
        except Exception as exc:
            if _outage(exc):
                raise ClusterUnavailableError(f"{type(exc).__name__}: {exc}") from exc
            raise

    def pipeline(
        self, transaction: Any | None = None, shard_hint: Any | None = None
    ) -> AsyncClusterPipeline:
        if shard_hint:
            raise RedisClusterException("shard_hint is deprecated in cluster mode")
        return _AsyncClusterPipeline(self, transaction)  # type: ignore[abstract]


class _AsyncClusterPipeline(AsyncClusterPipeline):
    async def execute(
        self, raise_on_error: bool = True, allow_redirections: bool = True
    ) -> list[Any]:
        try:
            return await super().execute(raise_on_error, allow_redirections)
        except Exception as exc:
            if _outage(exc):
                raise ClusterUnavailableError(f"{type(exc).__name__}: {exc}") from exc
            raise


class _SyncCluster(redis.RedisCluster):
    def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().execute_command(*args, **kwargs)  # type: ignore[no-untyped-call]
        except Exception as exc:
            if _outage(exc):
                raise ClusterUnavailableError(f"{type(exc).__name__}: {exc}") from exc
            raise


HEALTH_CHECK_INTERVAL_S = 5
"""A connection idle this long is PINGed before use, so a dead one is replaced quietly."""

CLUSTER_SCHEMES = {"redis+cluster": False, "rediss+cluster": True}
"""URL schemes of a Redis Cluster -> whether TLS is used."""


@dataclass(frozen=True, slots=True)
class ClusterUrl:
    """A parsed ``redis+cluster://`` URL: seed nodes, credentials, TLS."""

    nodes: tuple[tuple[str, int], ...]
    username: str | None
    password: str | None
    tls: bool


def is_cluster_url(url: str) -> bool:
    """Whether ``url`` names a Redis Cluster (``redis+cluster://``, ``rediss+cluster://``)."""
    return url.partition("://")[0].lower() in CLUSTER_SCHEMES


def parse_cluster_url(url: str) -> ClusterUrl:
    """Seeds and credentials of a cluster URL; ``ValueError`` naming what is wrong."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in CLUSTER_SCHEMES:
        raise ValueError("a Redis Cluster URL starts with redis+cluster:// or rediss+cluster://")
    rest = rest.split("?", 1)[0]
    netloc, _, path = rest.partition("/")
    if path not in ("", "0"):
        raise ValueError("a Redis Cluster has only database 0 (no path, or /0)")
    username = password = None
    if "@" in netloc:
        auth, _, netloc = netloc.rpartition("@")
        user, has_password, secret = auth.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if has_password else None
    nodes: list[tuple[str, int]] = []
    for part in netloc.split(","):
        host, colon, port = part.strip().rpartition(":")
        if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"a Redis Cluster seed must be host:port, not {part!r}")
        nodes.append((host.strip("[]"), int(port)))
    return ClusterUrl(tuple(nodes), username, password, CLUSTER_SCHEMES[scheme.lower()])


def check_url(url: str) -> str:
    """``url`` when it is a usable Redis or Redis Cluster URL; ``ValueError`` otherwise."""
    if is_cluster_url(url):
        parse_cluster_url(url)
    elif url.partition("://")[0].lower() not in ("redis", "rediss", "unix"):
        raise ValueError(
            "expected redis://, rediss://, unix://, redis+cluster:// or rediss+cluster://"
        )
    return url


def async_options(timeout_s: float | None = None, retries: int = 3) -> dict[str, Any]:
    """Keyword arguments for ``redis.asyncio`` clients and pools.

    ``timeout_s``: seconds a command (and a connection attempt) may take before it fails
    with ``redis.exceptions.TimeoutError``; None waits as long as the OS does. ``retries``:
    attempts after the first one fails with a connection error or a timeout.
    """
    return {
        "retry": AsyncRetry(ExponentialBackoff(cap=0.5, base=0.02), retries),
        "health_check_interval": HEALTH_CHECK_INTERVAL_S,
        "socket_timeout": timeout_s,
        "socket_connect_timeout": timeout_s,
    }


def sync_options() -> dict[str, Any]:
    """Keyword arguments for synchronous ``redis`` clients and pools."""
    return {
        "retry": Retry(ExponentialBackoff(cap=0.5, base=0.02), 3),
        "health_check_interval": HEALTH_CHECK_INTERVAL_S,
    }


def async_client(
    url: str,
    *,
    timeout_s: float | None = None,
    max_connections: int | None = None,
    pool_wait_s: float | None = None,
    retries: int = 3,
) -> Redis:
    """The asyncio client of ``url`` (bytes replies); ``aclose()`` closes its connections.

    ``timeout_s``, ``retries``: see :func:`async_options`. ``max_connections``: a bounded
    pool in which a command waits up to ``pool_wait_s`` for a free connection (single node);
    on a cluster the bound is per node, and a command past it fails at once (redis-py's
    cluster pool does not wait), so size it for the concurrency. None: redis-py's defaults.
    """
    if is_cluster_url(url):
        c = parse_cluster_url(url)
        cluster = _AsyncCluster(
            startup_nodes=[AsyncClusterNode(host, port) for host, port in c.nodes],
            username=c.username,
            password=c.password,
            ssl=c.tls,
            decode_responses=False,
            max_connections=max_connections or 100,
            **async_options(timeout_s, retries),
        )
        return cast(Redis, cluster)
    if max_connections is None:
        return Redis.from_url(url, decode_responses=False, **async_options(timeout_s, retries))
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=pool_wait_s,
        **async_options(timeout_s, retries),
    )
    return Redis.from_pool(pool)


def sync_client(url: str) -> redis.Redis:
    """The synchronous client of ``url`` (bytes replies); a ``RedisCluster`` for a cluster URL."""
    if is_cluster_url(url):
        c = parse_cluster_url(url)
        try:
            cluster = _SyncCluster(
                startup_nodes=[ClusterNode(host, port) for host, port in c.nodes],  # type: ignore[no-untyped-call]
                username=c.username,
                password=c.password,
                ssl=c.tls,
                decode_responses=False,
                **sync_options(),
            )
        except Exception as exc:  # it connects at once: no seed answering is an outage too
            if _outage(exc):
                raise ClusterUnavailableError(f"{type(exc).__name__}: {exc}") from exc
            raise
        return cast(redis.Redis, cluster)
    return redis.Redis.from_url(url, decode_responses=False, **sync_options())


def is_cluster(client: object) -> bool:
    """Whether ``client`` (from :func:`async_client`, :func:`sync_client` or a pipeline of
    one) talks to a Redis Cluster."""
    return isinstance(
        client, AsyncRedisCluster | redis.RedisCluster | AsyncClusterPipeline | ClusterPipeline
    )


async def ping(client: Redis) -> bool:
    """PING the node, or every master of a cluster (a lost replica does not stop reads)."""
    if is_cluster(client):
        return bool(
            await cast(AsyncRedisCluster, client).ping(target_nodes=AsyncRedisCluster.PRIMARIES)
        )
    return bool(await client.ping())
