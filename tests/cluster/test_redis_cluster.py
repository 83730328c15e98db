"""Fault test 4: a Redis Cluster master fails over, or restarts empty.

Against the three masters and three replicas of `.ci/redis-cluster.sh` (`make test-cluster`
starts them and sets ``MSGSTATUS_TEST_REDIS_CLUSTER_URL``; without it these tests skip):

- the notifier's state works on the cluster (every key of its namespace in one slot);
- the projector's way of writing (raw pipelines of single-slot commands and scripts across
  all masters, ``runtime.cluster_pipeline``) rides out ``kill -9`` of a master: batches fail
  with ``ClusterUnavailableError`` (retriable) until the replica is promoted, then apply,
  NOSCRIPT on the promoted replica included, and nothing written before is lost;
- ingest, projector and api on the cluster, webhooks arriving, ``kill -9`` of the master that
  holds the projection's positions: no process exits, ``/readyz`` is 503 while the master is
  unreachable and 200 again by itself, every acknowledged event is read exactly once and the
  state equals a clean pass;
- a master and its replica restart without persistence (their slots come back empty, which
  no failover can prevent): exactly the messages of those slots read 404, and
  ``msgstatus replay --in-place`` restores them; the state equals a clean pass.
"""

from __future__ import annotations

import asyncio
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
from schemas import deliveries
from schemas.deliveries import Attempt, Delivery
from schemas.layout import Layout, meta_key
from tests.cluster import redis_nodes
from tests.cluster.conftest import Deployment, Figures
from tests.cluster.processes import applied, metric, wait_applied
from tests.cluster.workload import assert_exactly_once, assert_same_state, workload


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


class Readiness:
    """Polls an API's ``/readyz`` every 50 ms in the background: (monotonic time, status)."""

    def __init__(self, http: aiohttp.ClientSession, api_url: str) -> None:
        self.http = http
        self.url = api_url + "/readyz"
        self.seen: list[tuple[float, int]] = []
        self.states: list[str] = []  # what /readyz said, each change once
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._poll())

    async def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                async with self.http.get(self.url, timeout=aiohttp.ClientTimeout(total=3)) as r:
                    self.seen.append((time.monotonic(), r.status))
                    body = await r.json()
                state = "ready"
                if r.status != 200:
                    state = "redis-down"
                    if body["checks"]["redis"]:
                        state = body.get("projection", {}).get("state", "?")
            except (aiohttp.ClientError, TimeoutError):
                self.seen.append((time.monotonic(), 0))
                state = "no-answer"
            if not self.states or self.states[-1] != state:
                self.states.append(state)
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        self._stop.set()
        await self._task

    def not_ready_after(self, t0: float) -> list[float]:
        """Seconds after ``t0`` of every answer other than 200."""
        return [round(t - t0, 2) for t, status in self.seen if t >= t0 and status != 200]

    def statuses(self) -> set[int]:
        return {status for _, status in self.seen}


FAILOVER_MESSAGES = 300  # 900 webhooks at 45/s


@pytest.mark.timeout(300)
async def test_projector_and_api_ride_out_a_master_failover(
    deployment: Deployment, redis_cluster: str, figures: Figures
) -> None:
    """kill -9 of the master that holds the projection's positions, webhooks arriving."""
    d = deployment
    ingest, projector, api = (
        d.procs.service(c, c, redis_url=redis_cluster) for c in ("ingest", "projector", "api")
    )
    for service in (ingest, projector, api):
        service.start()
    for service in (ingest, projector, api):
        await service.wait_started(d.http)
    messages = workload(FAILOVER_MESSAGES)
    sender, reader = d.sender(ingest.url), d.reader(api.url)
    readiness = Readiness(d.http, api.url)
    sending = asyncio.create_task(sender.steady(messages, per_second=15))
    await wait_applied(d.http, [projector], 60, timeout=60)
    victim = redis_nodes.master_of(Layout(d.generation).positions_key)
    replica = redis_nodes.replica_of(victim)
    applied_before = await applied(d.http, [projector])
    killed_at = time.monotonic()
    await asyncio.to_thread(redis_nodes.kill, victim)
    promoted_s = await asyncio.to_thread(redis_nodes.wait_promoted, replica)
    await asyncio.sleep(3)
    await asyncio.to_thread(redis_nodes.start, victim)  # back, empty, as the new replica
    await sending
    snapshot = await reader.converge(messages)
    await readiness.stop()
    retries = await metric(d.http, projector, "msgstatus_batch_retries_total")
    for service in (ingest, projector, api):
        assert service.running(), f"{service.command} exited:\n{service.log_tail()}"
    assert projector.starts == 1
    assert_exactly_once(snapshot, messages)
    not_ready = readiness.not_ready_after(killed_at)
    assert not_ready, "the api stayed ready while a master was unreachable"
    assert readiness.statuses() <= {200, 503}, readiness.statuses()
    assert readiness.seen[-1][1] == 200
    assert "redis-down" in readiness.states, readiness.states
    clean = await d.clean_pass(messages)
    assert_same_state(snapshot, clean)
    figures.state(
        messages=FAILOVER_MESSAGES,
        events=3 * FAILOVER_MESSAGES,
        webhooks_acknowledged=len(messages) * 3,
        folded_before_kill=int(applied_before),
        killed_master=victim,
        promoted_replica=replica,
        promotion_s=round(promoted_s, 1),
        readyz_not_200=len(not_ready),
        readyz_not_ready_from_to_s=f"{not_ready[0]}..{max(not_ready)}",
        readyz_states=" -> ".join(readiness.states),
        projector_batch_retries=int(retries),
        projector_restarts=projector.starts - 1,
    )


RESTORE_MESSAGES = 1500  # 4,500 events


@pytest.mark.timeout(400)
async def test_a_master_restarted_empty_is_restored_by_replay(
    deployment: Deployment, redis_cluster: str, figures: Figures
) -> None:
    """A master and its replica both restart without persistence: their slots come back
    empty (no failover can help). The projector's own positions are on another master, so
    nothing tells it; ``msgstatus replay --in-place`` restores exactly what was lost."""
    d = deployment
    ingest, projector, api = (
        d.procs.service(c, c, redis_url=redis_cluster) for c in ("ingest", "projector", "api")
    )
    for service in (ingest, projector, api):
        service.start()
    for service in (ingest, projector, api):
        await service.wait_started(d.http)
    messages = workload(RESTORE_MESSAGES)
    await d.sender(ingest.url).backlog(messages)
    reader = d.reader(api.url)
    await reader.converge(messages)
    layout = Layout(d.generation)
    owners = redis_nodes.slot_owners()
    keep = {redis_nodes.owner(k, owners) for k in (layout.positions_key, meta_key(d.generation))}
    victim = next(n for n in redis_nodes.masters() if n not in keep)
    replica = redis_nodes.replica_of(victim)
    on_victim = {
        m.id for m in messages if redis_nodes.owner(layout.message_key(m.id), owners) == victim
    }
    assert on_victim

    readiness = Readiness(d.http, api.url)
    down_at = time.monotonic()
    for node in (replica, victim):
        await asyncio.to_thread(redis_nodes.kill, node)
    for node in (victim, replica):
        await asyncio.to_thread(redis_nodes.start, node)
    await asyncio.to_thread(redis_nodes.ensure_healthy)
    up_s = time.monotonic() - down_at
    await asyncio.sleep(2)  # a projector that noticed anything would have begun a rebuild
    lost = set(await reader.delivered(messages))
    assert lost == on_victim, (len(lost), len(on_victim))

    replay = d.procs.service("replay", "replay", redis_url=redis_cluster, in_place="true")
    t0 = time.monotonic()
    replay.start()
    assert replay.proc is not None
    code = await asyncio.to_thread(replay.proc.wait, 300)
    replay_s = time.monotonic() - t0
    assert code == 0, replay.log_tail()
    assert await reader.delivered(messages) == []  # restored when replay exits, at once
    snapshot = await reader.snapshot(messages)
    await readiness.stop()
    assert_exactly_once(snapshot, messages)
    assert projector.running(), projector.log_tail()
    assert api.running(), api.log_tail()
    not_ready = readiness.not_ready_after(down_at)
    clean = await d.clean_pass(messages)
    assert_same_state(snapshot, clean)
    figures.state(
        messages=RESTORE_MESSAGES,
        events=3 * RESTORE_MESSAGES,
        restarted_master=victim,
        restarted_replica=replica,
        cluster_whole_again_s=round(up_s, 1),
        documents_lost=len(lost),
        readyz_not_200=len(not_ready),
        readyz_states=" -> ".join(readiness.states),
        replay_in_place_s=round(replay_s, 1),
        projector_restarts=projector.starts - 1,
    )
