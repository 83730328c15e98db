"""Pipelines of raw commands on a Redis Cluster, one per master, replies in the caller's order.

The projector sends its writes as argument tuples straight through a pooled connection
(``projector.commands``); on a cluster the same tuples go here instead. Each command must
touch one slot (a script's keys share a hash tag: redis-py refuses others); the commands of
one call may touch any number of slots. They are grouped by the master that serves their
slot, each group is written in one go on a pooled connection of that master, and the replies
are put back in the order of ``cmds``: error replies as exception objects, as
``projector.commands`` expects.

Redirections are followed here: ``MOVED`` (a failover or a resharding moved the slot) refreshes
the slot map and sends the command again, to the new master; ``ASK`` (a slot being migrated)
sends it once to the node named, after ``ASKING``; ``TRYAGAIN`` waits a little. Commands are
sent again only after a redirection, which means they did not run, so nothing runs twice.

A master that cannot be reached, ``CLUSTERDOWN`` (slots without a master until a replica is
promoted) and redirections that do not settle raise
:class:`runtime.redis_client.ClusterUnavailableError`, a ``ConnectionError``: the caller's
retry of the whole batch (with back-off) is what rides out a failover. The slot map is
refreshed before that error is raised, so the retry goes to the promoted replica.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import redis
from redis.cluster import ClusterNode
from redis.exceptions import (
    AskError,
    ClusterDownError,
    MovedError,
    RedisClusterException,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from runtime.redis_client import ClusterUnavailableError

MAX_ROUNDS = 5
"""Rounds of redirections before giving up on a call (each round refreshes the slot map)."""


def send(client: redis.Redis | redis.RedisCluster, cmds: Sequence[tuple[Any, ...]]) -> list[Any]:
    """Run ``cmds`` on the cluster ``client`` (``runtime.redis_client.sync_client`` of a
    cluster URL); one reply per command, error replies as exceptions.

    Raises :class:`ClusterUnavailableError` (see the module docstring) and the
    ``RedisClusterException`` of a command whose keys span slots.
    """
    cluster = _cluster_of(client)
    results: list[Any] = [None] * len(cmds)
    todo = list(range(len(cmds)))
    ask: dict[int, ClusterNode] = {}
    for _ in range(MAX_ROUNDS):
        groups: dict[str, list[int]] = defaultdict(list)
        nodes: dict[str, ClusterNode] = {}
        for i in todo:
            node = ask.get(i) or _master_of(cluster, cmds[i])
            groups[node.name].append(i)
            nodes[node.name] = node
        again: list[int] = []
        moved = False
        for name, indexes in groups.items():
            replies = _send_to(cluster, nodes[name], [(cmds[i], i in ask) for i in indexes])
            for i, reply in zip(indexes, replies, strict=True):
                ask.pop(i, None)
                if isinstance(reply, MovedError):
                    moved = True
                    again.append(i)
                elif isinstance(reply, AskError):
                    ask[i] = _node(cluster, reply.host, reply.port)
                    again.append(i)
                elif isinstance(reply, TryAgainError):
                    again.append(i)
                elif isinstance(reply, ClusterDownError):
                    _refresh(cluster)
                    raise ClusterUnavailableError(f"ClusterDownError: {reply}") from reply
                else:
                    results[i] = reply
        if not again:
            return results
        if moved:
            _refresh(cluster)
        else:
            time.sleep(0.05)  # TRYAGAIN / ASK: a migration is under way
        todo = again
    _refresh(cluster)
    raise ClusterUnavailableError(f"redirections did not settle in {MAX_ROUNDS} rounds")


def _cluster_of(client: redis.Redis | redis.RedisCluster) -> redis.RedisCluster:
    if not isinstance(client, redis.RedisCluster):
        raise TypeError("cluster_pipeline.send needs a Redis Cluster client")
    return client


def _master_of(cluster: redis.RedisCluster, cmd: tuple[Any, ...]) -> ClusterNode:
    slot = cluster.determine_slot(*cmd)
    if slot is None:
        raise RedisClusterException(f"{cmd[0]!r} names no key: no slot to send it to")
    try:
        node = cluster.nodes_manager.get_node_from_slot(slot)
    except (RedisClusterException, IndexError) as exc:  # a slot without a master
        _refresh(cluster)
        raise ClusterUnavailableError(f"slot {slot} has no master: {exc}") from exc
    assert isinstance(node, ClusterNode)
    return node


def _node(cluster: redis.RedisCluster, host: str, port: int) -> ClusterNode:
    node = cluster.get_node(host=host, port=port)  # type: ignore[no-untyped-call]
    if node is None:  # a node the slot map does not know yet
        _refresh(cluster)
        node = cluster.get_node(host=host, port=port)  # type: ignore[no-untyped-call]
    if node is None:
        raise ClusterUnavailableError(f"ASK names an unknown node {host}:{port}")
    assert isinstance(node, ClusterNode)
    return node


def _refresh(cluster: redis.RedisCluster) -> None:
    """Read the slot map again; quietly keep the old one when no node answers now."""
    with contextlib.suppress(
        RedisClusterException, RedisConnectionError, RedisTimeoutError, OSError
    ):
        cluster.nodes_manager.initialize()


def _send_to(
    cluster: redis.RedisCluster, node: ClusterNode, cmds: list[tuple[tuple[Any, ...], bool]]
) -> list[Any]:
    """Write ``cmds`` (each with whether it needs ``ASKING`` first) on one connection of
    ``node`` and read every reply. A connection that failed mid-way is disconnected, never
    returned to the pool with replies outstanding (docs/pitfalls.md: redis-py#2624)."""
    client = cluster.get_redis_connection(node)
    pool = client.connection_pool
    wire: list[tuple[Any, ...]] = []
    for cmd, asking in cmds:
        if asking:
            wire.append(("ASKING",))
        wire.append(cmd)
    try:
        conn = pool.get_connection()
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        _refresh(cluster)
        raise ClusterUnavailableError(f"{node.name}: {exc}") from exc
    try:
        conn.send_packed_command(conn.pack_commands(wire))  # type: ignore[no-untyped-call]
        replies: list[Any] = []
        for _cmd, asking in cmds:
            if asking:
                with contextlib.suppress(ResponseError):  # the command's reply says it all
                    conn.read_response()
            try:
                replies.append(conn.read_response())
            except ResponseError as exc:
                replies.append(exc)
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        conn.disconnect()  # type: ignore[no-untyped-call]
        _refresh(cluster)
        raise ClusterUnavailableError(f"{node.name}: {exc}") from exc
    except BaseException:
        conn.disconnect()  # type: ignore[no-untyped-call]
        raise
    finally:
        pool.release(conn)
    return replies
