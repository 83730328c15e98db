"""Fault 1: kill -9 the leader broker of a partition while webhooks arrive at a steady rate."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.cluster import brokers
from tests.cluster.conftest import Deployment, Figures
from tests.cluster.workload import assert_exactly_once, assert_same_state, workload
from tests.support.kafka_util import topic_size

MESSAGES = 240  # three webhooks each
PER_SECOND = 10  # messages started per second: 30 webhooks/s for 24 s


async def wait_for_new_leaders(topic: str, dead: int, timeout: float = 60.0) -> float:
    """Wait until no partition is led by ``dead`` or leaderless; return when (monotonic)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            led = await brokers.leaders(topic)
            if led and all(node not in (dead, -1) for node in led.values()):
                return time.monotonic()
        except Exception:  # noqa: S110 - metadata from a node that just died; poll again
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"partitions of {topic} still led by node {dead} after {timeout} s")


@pytest.mark.timeout(360)
async def test_kill_the_leader_broker_loses_and_doubles_nothing(
    deployment: Deployment, figures: Figures
) -> None:
    """Every event ingest acknowledged while the leader died is projected exactly once."""
    d = deployment
    ingest, projector, api = (d.procs.service(c, c) for c in ("ingest", "projector", "api"))
    for service in (ingest, projector, api):
        service.start()
    for service in (ingest, projector, api):
        await service.wait_started(d.http)
    layout = await brokers.replicas(d.topic)
    assert len(layout) == 6
    assert all(len(reps) == 3 and len(isr) == 3 for _l, reps, isr in layout.values())
    assert await brokers.min_insync_replicas(d.topic) == 2
    victim = (await brokers.leaders(d.topic))[0]
    led_by_victim = sum(1 for leader, _r, _i in layout.values() if leader == victim)

    messages = workload(MESSAGES)
    sender = d.sender(ingest.url)
    sending = asyncio.create_task(sender.steady(messages, PER_SECOND))
    await asyncio.sleep(6)
    killed_at = time.monotonic()
    await asyncio.to_thread(brokers.kill_node, victim)
    elected_at = await wait_for_new_leaders(d.topic, victim)
    await asyncio.sleep(4)
    await asyncio.to_thread(brokers.start_node, victim)  # it rejoins while traffic goes on
    await sending
    await brokers.wait_all_in_sync(d.topic)

    failed = sender.failed()
    snapshot = await d.reader(api.url).converge(messages)
    assert_exactly_once(snapshot, messages)
    clean = await d.clean_pass(messages)
    assert_same_state(snapshot, clean)
    figures.state(
        messages=MESSAGES,
        webhooks_acknowledged=sender.acknowledged,
        attempts=len(sender.attempts),
        records_in_log=await topic_size(brokers.BOOTSTRAP, d.topic),
        slowest_answer_s=round(max(a.end - a.start for a in sender.attempts), 1),
        not_2xx=len(failed),
        answers_503=sum(1 for a in failed if a.status == 503),
        no_answer=sum(1 for a in failed if a.status == 0),
        broker_killed=f"node {victim} (led {led_by_victim} of 6 partitions)",
        leaders_moved_after_s=round(elected_at - killed_at, 1),
        last_failure_started_after_kill_s=round(
            max((a.start for a in failed), default=killed_at) - killed_at, 1
        ),
    )
    # A failed answer only for requests that started while a partition had no live leader
    # (and a produce deadline after it); none before the kill, none once leaders moved.
    assert all(killed_at - 0.5 <= a.start <= elected_at + 1.0 for a in failed), [
        (round(a.start - killed_at, 2), a.status) for a in failed
    ]
    assert ingest.running()
    assert projector.running()
