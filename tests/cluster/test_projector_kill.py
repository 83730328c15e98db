"""Faults 2 and 3: kill -9 a projector mid-batch, alone or as one of two in a consumer group."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.cluster.conftest import Deployment, Figures
from tests.cluster.processes import Service, applied, wait_applied
from tests.cluster.workload import assert_exactly_once, assert_same_state, workload

MESSAGES = 1500  # three events each: a backlog of 4,500 events on 6 partitions
EVENTS = 3 * MESSAGES
TIMED_MESSAGES = 6500  # 19,500 events for the throughput figures


async def start(d: Deployment, *services: Service) -> None:
    """Start the services and wait until each answers."""
    for service in services:
        service.start()
    for service in services:
        await service.wait_started(d.http)


@pytest.mark.timeout(300)
async def test_projector_killed_mid_batch_and_restarted_equals_a_clean_run(
    deployment: Deployment, figures: Figures
) -> None:
    """Three kill -9s of the projector while it folds a backlog leave a clean run's state."""
    d = deployment
    ingest, api = d.procs.service("ingest", "ingest"), d.procs.service("api", "api")
    # Small batches: many batches in flight, so each kill lands inside one.
    projector = d.procs.service("projector", "projector", batch_max_records="50")
    await start(d, ingest, api)
    messages = workload(MESSAGES)
    await d.sender(ingest.url).backlog(messages)

    kills_at: list[int] = []
    for step in (1, 2, 3):
        await start(d, projector)
        await wait_applied(d.http, [projector], EVENTS * step // 8)
        kills_at.append(int(await applied(d.http, [projector])))
        projector.kill()
    await start(d, projector)  # the fourth start runs to the end

    snapshot = await d.reader(api.url).converge(messages)
    assert_exactly_once(snapshot, messages)
    clean = await d.clean_pass(messages)
    assert_same_state(snapshot, clean)
    figures.state(
        messages=MESSAGES,
        events=EVENTS,
        projector_kills=len(kills_at),
        events_folded_by_each_killed_process=kills_at,
        batch_max_records=50,
    )


@pytest.mark.timeout(420)
async def test_one_of_two_projectors_killed_the_other_takes_over(
    deployment: Deployment, figures: Figures
) -> None:
    """Two projectors share 6 partitions; one dies mid-stream; the state is a clean pass's."""
    d = deployment
    ingest, api = d.procs.service("ingest", "ingest"), d.procs.service("api", "api")
    first = d.procs.service("projector", "projector-a", batch_max_records="50")
    second = d.procs.service("projector", "projector-b", batch_max_records="50")
    await start(d, ingest, api)
    messages = workload(MESSAGES)
    sender = d.sender(ingest.url)
    await sender.backlog(messages[: MESSAGES // 2])
    await start(d, first, second)
    # The second half arrives at a steady 75 webhooks/s while both fold; once each of them
    # has folded part of it (both hold partitions), one of them dies.
    arriving = asyncio.create_task(sender.steady(messages[MESSAGES // 2 :], per_second=25))
    await wait_applied(d.http, [first, second], EVENTS // 2)
    await wait_applied(d.http, [first], 1)
    await wait_applied(d.http, [second], 1)
    folded = [int(await applied(d.http, [p])) for p in (first, second)]
    first.kill()
    killed_at = time.monotonic()
    assert not arriving.done(), "the stream ended before the kill: not mid-stream"
    await arriving
    stream_end_s = time.monotonic() - killed_at

    snapshot = await d.reader(api.url).converge(messages)
    converged_s = time.monotonic() - killed_at
    assert_exactly_once(snapshot, messages)
    assert second.running()
    clean = await d.clean_pass(messages)
    assert_same_state(snapshot, clean)

    figures.state(
        messages=MESSAGES,
        events=EVENTS,
        projectors=2,
        partitions=6,
        killed="projector-a",
        folded_before_kill_by_a_and_b=folded,
        stream_ended_after_kill_s=round(stream_end_s, 1),
        all_readable_after_kill_s=round(converged_s, 1),
    )


@pytest.mark.timeout(300)
async def test_throughput_of_one_and_of_two_projectors(
    deployment: Deployment, figures: Figures
) -> None:
    """One and two projector processes fold the same 6-partition log (reported, not asserted)."""
    d = deployment
    ingest = d.procs.service("ingest", "ingest")
    await start(d, ingest)
    await d.sender(ingest.url).backlog(workload(TIMED_MESSAGES))
    total = 3 * TIMED_MESSAGES
    one = await d.fold_seconds(total, processes=1)
    two = await d.fold_seconds(total, processes=2)
    figures.state(
        events=total,
        partitions=6,
        events_per_s_1_process=round(total / one),
        events_per_s_2_processes=round(total / two),
    )
