"""The Redis Cluster of `.ci/redis-cluster.sh`: which node serves a key, kill -9 and restart.

``MSGSTATUS_TEST_REDIS_CLUSTER_URL`` (set by `make test-cluster`) names it; without it the
tests that need it skip. Node N (1-6) listens on ``REDIS_CLUSTER_BASE_PORT`` + N.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import time
from typing import Any

import pytest
import redis
from redis.crc import key_slot

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / ".ci" / "redis-cluster.sh"
URL = os.environ.get("MSGSTATUS_TEST_REDIS_CLUSTER_URL", "")
BASE = int(os.environ.get("REDIS_CLUSTER_BASE_PORT", "29200"))
NODES = range(1, 7)


def require() -> str:
    """The cluster URL, or skip the test (no cluster was started for this run)."""
    if not URL:
        pytest.skip("no Redis Cluster: MSGSTATUS_TEST_REDIS_CLUSTER_URL unset (make test-cluster)")
    return URL


def _script(*args: str, timeout: float = 90.0) -> str:
    result = subprocess.run(  # noqa: S603 - fixed script path, no shell
        ["bash", str(SCRIPT), *args],  # noqa: S607 - bash from PATH on purpose
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "REDIS_CLUSTER_BASE_PORT": str(BASE)},
    )
    if result.returncode != 0:
        raise RuntimeError(f"redis-cluster.sh {' '.join(args)}: {result.stdout}{result.stderr}")
    return result.stdout


def node_client(node: int) -> redis.Redis:
    """A plain client of one node (for CLUSTER and ROLE commands)."""
    return redis.Redis(port=BASE + node, socket_timeout=2, socket_connect_timeout=2)


def cmd(node: int, *args: str) -> Any:
    """Run one command on node ``node``."""
    return node_client(node).execute_command(*args)  # type: ignore[no-untyped-call]


def cluster_ok(node: int) -> bool:
    """Whether node ``node`` reports cluster_state:ok."""
    info = cmd(node, "CLUSTER INFO")  # redis-py parses it into a dict
    return bool(info.get("cluster_state") == "ok")


def answers(node: int) -> bool:
    """Whether node ``node`` answers PING."""
    try:
        return bool(node_client(node).ping())
    except redis.RedisError:
        return False


def master_of(key: str) -> int:
    """The node (1-6) that serves ``key``'s slot now."""
    slot = key_slot(key.encode())
    for n in NODES:
        if not answers(n):
            continue
        for start, end, master, *_ in cmd(n, "CLUSTER SLOTS"):
            if start <= slot <= end:
                return int(master[1]) - BASE
    raise AssertionError(f"no node serves slot {slot}")


def slot_owners() -> list[tuple[int, int, int]]:
    """(first slot, last slot, node) of every slot range, as the cluster reports it now."""
    for n in NODES:
        if answers(n):
            return [
                (int(start), int(end), int(master[1]) - BASE)
                for start, end, master, *_ in cmd(n, "CLUSTER SLOTS")
            ]
    raise AssertionError("no node of the Redis Cluster answers")


def owner(key: str, owners: list[tuple[int, int, int]]) -> int:
    """The node that serves ``key`` in ``owners`` (from :func:`slot_owners`)."""
    slot = key_slot(key.encode())
    return next(node for start, end, node in owners if start <= slot <= end)


def masters() -> list[int]:
    """The nodes that are masters now."""
    return sorted({node for _, _, node in slot_owners()})


def replica_of(master: int) -> int:
    """The node replicating ``master``."""
    for n in NODES:
        if n != master and answers(n):
            role = cmd(n, "ROLE")
            if role[0] == b"slave" and int(role[2]) == BASE + master:
                return n
    raise AssertionError(f"node {master} has no replica")


def kill(node: int) -> None:
    """SIGKILL node ``node``: its data is gone (no persistence)."""
    _script("kill", str(node))


def start(node: int) -> None:
    """Start node ``node`` again, empty, with its cluster configuration."""
    _script("start", str(node))


def healthy() -> bool:
    """All six answer, each says cluster_state:ok, and three masters each have a replica."""
    masters, replicas = 0, 0
    for n in NODES:
        try:
            ok = cluster_ok(n)
            role = cmd(n, "ROLE")
        except redis.RedisError:
            return False
        if not ok:
            return False
        if role[0] == b"master":
            masters += 1
        elif role[3] == b"connected":
            replicas += 1
    return masters == 3 and replicas == 3


def ensure_healthy(timeout: float = 60.0) -> None:
    """Start nodes a test killed and wait until the cluster is whole again."""
    for n in NODES:
        if not answers(n):
            start(n)
    deadline = time.monotonic() + timeout
    while not healthy():
        assert time.monotonic() < deadline, f"the Redis Cluster was not whole in {timeout} s"
        time.sleep(0.2)


def wait_promoted(replica: int, timeout: float = 30.0) -> float:
    """Wait until ``replica`` is a master and its cluster is ok; seconds waited."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            if cmd(replica, "ROLE")[0] == b"master" and cluster_ok(replica):
                return time.monotonic() - t0
        except redis.RedisError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"node {replica} was not promoted within {timeout} s")
