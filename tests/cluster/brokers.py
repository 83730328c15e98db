"""The three-broker cluster of `.ci/kafka-cluster.sh`: who leads what, kill -9 and restart."""

from __future__ import annotations

import asyncio
import os
import pathlib
import subprocess
import time

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.client import AIOKafkaClient

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / ".ci" / "kafka-cluster.sh"
_BASE = int(os.environ.get("KAFKA_CLUSTER_BASE_PORT", "29100"))
BOOTSTRAP = os.environ.get("MSGSTATUS_KAFKA_BOOTSTRAP_SERVERS") or ",".join(
    f"127.0.0.1:{_BASE + n}" for n in (1, 2, 3)
)


def _script(*args: str, timeout: float = 150.0) -> None:
    """Run ``kafka-cluster.sh`` with ``args``; raise with its output when it fails."""
    result = subprocess.run(  # noqa: S603 - fixed script path, no shell
        ["bash", str(SCRIPT), *args],  # noqa: S607 - bash from PATH on purpose
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"kafka-cluster.sh {' '.join(args)}: {result.stdout}{result.stderr}")


def kill_node(node: int) -> None:
    """SIGKILL broker ``node`` (its node.id; 1-3)."""
    _script("kill", str(node))


def start_node(node: int) -> None:
    """Start broker ``node`` again with its data, and wait until it answers."""
    _script("start", str(node))


async def leaders(topic: str) -> dict[int, int]:
    """Partition -> node id of its leader (-1 while it has none), from fresh metadata."""
    client = AIOKafkaClient(bootstrap_servers=BOOTSTRAP, request_timeout_ms=5000)
    await client.bootstrap()
    try:
        await client.force_metadata_update()
        partitions = client.cluster.partitions_for_topic(topic) or set()
        return {
            p: client.cluster.leader_for_partition(TopicPartition(topic, p)) or -1
            for p in sorted(partitions)
        }
    finally:
        await client.close()


async def replicas(topic: str) -> dict[int, tuple[int, list[int], list[int]]]:
    """Partition -> (leader, replicas, in-sync replicas) as the cluster describes the topic."""
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP, request_timeout_ms=5000)
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return {
        p["partition"]: (p["leader"], list(p["replicas"]), list(p["isr"]))
        for p in described[0]["partitions"]
    }


async def min_insync_replicas(topic: str) -> int:
    """The topic's effective ``min.insync.replicas``."""
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType  # noqa: PLC0415

    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP, request_timeout_ms=5000)
    await admin.start()
    try:
        answer = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    for _code, _msg, _type, _name, entries in answer[0].resources:
        for entry in entries:
            if entry[0] == "min.insync.replicas":
                return int(entry[1])
    raise AssertionError(f"no min.insync.replicas for {topic}")


async def wait_all_in_sync(topic: str, timeout: float = 90.0) -> None:
    """Wait until every partition of ``topic`` has all three replicas in sync."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = await replicas(topic)
            if all(len(isr) == 3 for _l, _r, isr in last.values()):
                return
        except Exception as exc:  # a broker still starting; poll again
            last = exc
        await asyncio.sleep(0.5)
    raise AssertionError(f"{topic} not fully in sync after {timeout} s: {last}")


def ensure_running() -> None:
    """Start any node a previous test left killed (start is a no-op for a running node)."""
    for node in (1, 2, 3):
        start_node(node)
