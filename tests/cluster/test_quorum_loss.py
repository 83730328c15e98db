"""Two of three brokers killed: no in-sync quorum, so ingest answers 503 and acknowledges nothing."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.cluster import brokers
from tests.cluster.conftest import Deployment, Figures
from tests.cluster.workload import assert_exactly_once, assert_same_state, workload
from tests.support.kafka_util import topic_size

MESSAGES = 150
PER_SECOND = 5  # 15 webhooks/s for 30 s
DOWN_S = 8


@pytest.mark.timeout(420)
async def test_without_an_in_sync_quorum_ingest_answers_503_and_loses_nothing(
    deployment: Deployment, figures: Figures
) -> None:
    """While two brokers are dead no webhook gets a 2xx; after they return, every event once."""
    d = deployment
    ingest, projector, api = (d.procs.service(c, c) for c in ("ingest", "projector", "api"))
    for service in (ingest, projector, api):
        service.start()
    for service in (ingest, projector, api):
        await service.wait_started(d.http)
    survivor = (await brokers.leaders(d.topic))[0]
    victims = [n for n in (1, 2, 3) if n != survivor]

    messages = workload(MESSAGES)
    sender = d.sender(ingest.url)
    sending = asyncio.create_task(sender.steady(messages, PER_SECOND))
    await asyncio.sleep(5)
    for node in victims:
        await asyncio.to_thread(brokers.kill_node, node)
    down_at = time.monotonic()
    await asyncio.sleep(DOWN_S)
    back_from = time.monotonic()
    await asyncio.gather(*(asyncio.to_thread(brokers.start_node, n) for n in victims))
    back_at = time.monotonic()
    await sending
    await brokers.wait_all_in_sync(d.topic)

    # Requests that began after the second kill and ended before the restarts began got no
    # 2xx: an acknowledgement needs two in-sync replicas.
    during = [a for a in sender.attempts if a.start >= down_at and a.end <= back_from]
    assert during, "no request fell inside the outage"
    assert all(a.status == 503 for a in during), sorted({a.status for a in during})
    first_ok_after = min(
        (a.end for a in sender.attempts if a.start >= down_at and 200 <= a.status < 300),
        default=float("nan"),
    )

    snapshot = await d.reader(api.url).converge(messages)
    assert_exactly_once(snapshot, messages)
    clean = await d.clean_pass(messages)
    assert_same_state(snapshot, clean)
    assert ingest.running()
    assert projector.running()
    figures.state(
        messages=MESSAGES,
        webhooks_acknowledged=sender.acknowledged,
        attempts=len(sender.attempts),
        answers_503=sum(1 for a in sender.attempts if a.status == 503),
        no_answer=sum(1 for a in sender.attempts if a.status == 0),
        brokers_killed=f"nodes {victims[0]} and {victims[1]} for {DOWN_S} s",
        requests_inside_outage=len(during),
        restarts_took_s=round(back_at - back_from, 1),
        first_2xx_after_kill_s=round(first_ok_after - down_at, 1),
        records_in_log=await topic_size(brokers.BOOTSTRAP, d.topic),
    )
