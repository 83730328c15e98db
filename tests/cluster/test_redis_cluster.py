"""Fault test 4 (the parts that need no projector): Redis Cluster, a master failed over.

Against the three masters and three replicas of `.ci/redis-cluster.sh` (`make test-cluster`
starts them and sets ``MSGSTATUS_TEST_REDIS_CLUSTER_URL``; without it these tests skip):

- the notifier's state works on the cluster (every key of its namespace in one slot);
- the projector's way of writing (raw pipelines of single-slot commands and scripts across
  all masters, ``runtime.cluster_pipeline``) rides out ``kill -9`` of a master: batches
  fail with ``ClusterUnavailableError`` (retriable) until the replica is promoted, then
  apply, NOSCRIPT on the promoted replica included, and nothing written before is lost;
- the read API on the cluster answers ``/readyz`` 503 while a master is unreachable and
  200 again once its replica is promoted, without restarting, and reads what was written.
"""

from __future__ import annotations

import asyncio
import pathlib
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import aiohttp
import orjson
import pytest
from redis.exceptions import NoScriptError

from notifier.state import State
from runtime import cluster_pipeline, redis_client
from runtime.redis_client import ClusterUnavailableError
from schemas import deliveries, keys
from schemas.deliveries import Attempt, Delivery
from tests.cluster import redis_nodes
from tests.cluster.conftest import Figures
from tests.cluster.processes import Processes


@pytest.fixture
def redis_cluster() -> Iterator[str]:
    """The cluster URL; the cluster is whole before and after the test (killed nodes are
    started again, as replicas of the promoted ones)."""
    url = redis_nodes.require()
    redis_nodes.ensure_healthy()
    yield url
    redis_nodes.ensure_healthy()


def _delivery(message_id: str, sequence: int) -> Delivery:
    return Delivery(
        webhookId=f"wh-{message_id}-{sequence}",
        messageId=message_id,
        endpoint="ep1",
        url="https://example.test/hook",
        sequence=sequence,
        status="DELIVERED",
        body=orjson.dumps({"id": f"wh-{message_id}"}).decode(),
        createdAt=1,
    )


async def test_notifier_state_on_the_cluster(redis_cluster: str) -> None:
    redis = redis_client.async_client(redis_cluster, max_connections=16)
    ns = f"n{uuid.uuid4().hex[:8]}"
    try:
        state = State(redis, ns, 3_600_000)
        assert state.ns == "{" + ns + "}"
        ids = [str(uuid.uuid4()) for _ in range(20)]
        for m in ids:
            await state.remember_webhook(m, b'{"url":"https://example.test/hook"}')
        assert all(w is not None for w in await state.webhooks(ids))
        assert await state.enqueue([(_delivery(m, 2), 0) for m in ids]) == [1] * 20
        # A repeat and an older change are dropped: the scripts ran on one node, atomically.
        assert await state.enqueue([(_delivery(ids[0], 2), 0), (_delivery(ids[1], 1), 0)]) == [
            0,
            0,
        ]
        claimed = await state.claim(int(time.time() * 1000), 30_000, 100)
        assert sorted(c.delivery.message_id for c in claimed) == sorted(ids)
        for c in claimed:
            attempt = Attempt(
                at=1,
                endpoint="ep1",
                host="example.test",
                sequence=c.delivery.sequence,
                webhookId=c.delivery.webhook_id,
                httpStatus=200,
                outcome="delivered",
            )
            assert await state.finish(c, attempt, retry_at_ms=None, reason="delivered")
        document = await deliveries.read_deliveries(redis, state.ns, ids[3])
        assert document["endpoints"][0]["state"] == "delivered"
        assert len(document["attempts"]) == 1
        assert await deliveries.resend(redis, state.ns, ids[3], 5, 3_600_000) == 1
    finally:
        await redis.aclose()


SET_SCRIPT = "redis.call('SET', KEYS[1], ARGV[1]) return 1"


class Writer:
    """Batches like the projector's: 100 SETs and 100 script calls over all masters, each
    batch retried whole (with back-off) until it applies; NOSCRIPT reloads the script."""

    def __init__(self, url: str) -> None:
        self.client = redis_client.sync_client(url)
        self.tag = uuid.uuid4().hex[:8]
        self.sha = ""
        self.batches = 0
        self.failed: Counter[str] = Counter()
        self.unexpected: list[BaseException] = []
        self.fail_times: list[float] = []
        self.stop = threading.Event()

    def key_names(self) -> list[str]:
        return [f"fo:{self.tag}:{kind}:{{{i}}}" for kind in ("s", "e") for i in range(100)]

    def commands(self, batch: int) -> list[tuple[Any, ...]]:
        out: list[tuple[Any, ...]] = []
        for i, key in enumerate(self.key_names()):
            if i < 100:
                out.append(("SET", key, batch))
            else:
                out.append(("EVALSHA", self.sha, 1, key, batch))
        return out

    def run(self) -> None:
        try:
            self.sha = str(self.client.script_load(SET_SCRIPT))
            while not self.stop.is_set():
                batch = self.batches + 1
                try:
                    replies = cluster_pipeline.send(self.client, self.commands(batch))
                except ClusterUnavailableError as exc:
                    self.failed[type(exc.__cause__ or exc).__name__] += 1
                    self.fail_times.append(time.monotonic())
                    time.sleep(0.1)
                    continue
                errors = [r for r in replies if isinstance(r, Exception)]
                if any(isinstance(e, NoScriptError) for e in errors):
                    self.failed["NOSCRIPT"] += 1
                    self.fail_times.append(time.monotonic())
                    self.sha = str(self.client.script_load(SET_SCRIPT))
                    continue
                assert not errors, errors[:3]
                self.batches = batch
                time.sleep(0.02)
        except BaseException as exc:
            self.unexpected.append(exc)


async def test_raw_pipelines_ride_out_a_master_killed(redis_cluster: str, figures: Figures) -> None:
    writer = Writer(redis_cluster)
    thread = threading.Thread(target=writer.run, daemon=True)
    thread.start()
    try:
        await asyncio.sleep(1.5)
        assert writer.batches > 0, writer.unexpected
        victim = redis_nodes.master_of(writer.key_names()[0])
        replica = redis_nodes.replica_of(victim)
        before = writer.batches
        killed_at = time.monotonic()
        await asyncio.to_thread(redis_nodes.kill, victim)
        promoted_s = await asyncio.to_thread(redis_nodes.wait_promoted, replica)
        # Keep writing until batches flow again for a while after the promotion.
        deadline = time.monotonic() + 30
        while writer.batches < before + 30 or (
            writer.fail_times and time.monotonic() - writer.fail_times[-1] < 2
        ):
            assert time.monotonic() < deadline, (writer.batches, writer.failed, writer.unexpected)
            await asyncio.sleep(0.1)
    finally:
        writer.stop.set()
        await asyncio.to_thread(thread.join, 30)
    assert not writer.unexpected, writer.unexpected
    outage = (writer.fail_times[-1] - killed_at) if writer.fail_times else 0.0
    # Every key holds the last batch: nothing applied before or after the failover is lost.
    check = redis_client.sync_client(redis_cluster)
    values = cluster_pipeline.send(check, [("GET", k) for k in writer.key_names()])
    assert values == [str(writer.batches).encode()] * len(values)
    figures.state(
        killed_node=victim,
        promoted_node=replica,
        promotion_s=round(promoted_s, 1),
        batches=writer.batches,
        commands=writer.batches * 200,
        failed_attempts=dict(writer.failed),
        last_failure_after_kill_s=round(outage, 1),
    )


async def test_api_readiness_follows_a_master_failover(
    redis_cluster: str, tmp_path: pathlib.Path, figures: Figures
) -> None:
    generation = f"c{uuid.uuid4().hex[:8]}"
    api_key = f"key-{uuid.uuid4().hex}"
    procs = Processes(
        {
            "MSGSTATUS_REDIS_URL": redis_cluster,
            "MSGSTATUS_GENERATION": generation,
            "MSGSTATUS_API_KEYS": api_key,
            "MSGSTATUS_REDIS_TIMEOUT_S": "0.5",
            "MSGSTATUS_LOG_FORMAT": "text",
            "MSGSTATUS_LOG_LEVEL": "WARNING",
        },
        tmp_path,
    )
    message_id = str(uuid.uuid4())
    document = orjson.dumps({"message": {"id": message_id, "status": "DELIVERED"}})
    key = keys.message_key(generation, message_id)
    writer = redis_client.sync_client(redis_cluster)
    writer.set(key, document + b"\n{}")
    victim = redis_nodes.master_of(key)
    replica = redis_nodes.replica_of(victim)
    # Replication is asynchronous: wait until the replica has the write.
    redis_nodes.cmd(victim, "WAIT", "1", "2000")
    api = procs.service("api", "api")
    api.start()
    states: list[tuple[float, int]] = []
    try:
        async with aiohttp.ClientSession() as http:
            await api.wait_started(http)
            url = f"{api.url}/api/messagestatus/{message_id}"
            async with http.get(url, headers={"X-Api-Key": api_key}) as resp:
                assert resp.status == 200
                assert await resp.read() == document

            stop = asyncio.Event()

            async def poll() -> None:
                while not stop.is_set():
                    try:
                        async with http.get(
                            api.url + "/readyz", timeout=aiohttp.ClientTimeout(total=3)
                        ) as resp:
                            states.append((time.monotonic(), resp.status))
                    except (aiohttp.ClientError, TimeoutError):
                        states.append((time.monotonic(), 0))
                    await asyncio.sleep(0.05)

            poller = asyncio.create_task(poll())
            await asyncio.sleep(0.5)
            killed_at = time.monotonic()
            await asyncio.to_thread(redis_nodes.kill, victim)
            promoted_s = await asyncio.to_thread(redis_nodes.wait_promoted, replica)
            await asyncio.sleep(4.0)
            stop.set()
            await poller
            assert api.running(), api.log_tail()
            async with http.get(url, headers={"X-Api-Key": api_key}) as resp:
                assert resp.status == 200
                assert await resp.read() == document
    finally:
        await asyncio.to_thread(procs.close)
    before = [status for t, status in states if t < killed_at]
    after = [(round(t - killed_at, 2), status) for t, status in states if t >= killed_at]
    bad = [t for t, status in after if status != 200]
    assert before, states
    assert set(before) == {200}, before
    # Unreachable master: not ready (503, never a hang or a crash) until the promotion...
    assert bad, after[:20]
    assert {status for _, status in after} <= {200, 503}, after
    # ...and ready again by itself once the replica serves the slots.
    assert after[-1][1] == 200, after[-10:]
    assert max(bad) < promoted_s + 3.0, (max(bad), promoted_s)
    figures.state(
        killed_node=victim,
        promoted_node=replica,
        promotion_s=round(promoted_s, 1),
        readyz_polls=len(states),
        readyz_not_200=len(bad),
        first_503_after_kill_s=bad[0],
        last_503_after_kill_s=max(bad),
    )
