"""Fixtures of the fault tests: the three-broker cluster, child processes, a clean reference."""

from __future__ import annotations

import asyncio
import os
import pathlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest

from tests.cluster import brokers
from tests.cluster.processes import Processes, wait_applied
from tests.cluster.workload import Message, Reader, Sender, Snapshot
from tests.factories import new_secret

REDIS_URL = os.environ.get("MSGSTATUS_REDIS_URL", "redis://127.0.0.1:6399/0")


@dataclass
class Deployment:
    """Names and credentials of one test's msgstatus: topic, group, generation, keys."""

    procs: Processes
    topic: str
    group: str
    generation: str
    secret: str
    api_key: str
    http: aiohttp.ClientSession

    def sender(self, ingest_url: str) -> Sender:
        """A webhook sender to an ingest of this deployment."""
        return Sender(self.http, ingest_url, self.secret)

    def reader(self, api_url: str) -> Reader:
        """A read-API client with this deployment's key."""
        return Reader(self.http, api_url, self.api_key)

    async def clean_pass(self, messages: list[Message]) -> Snapshot:
        """A projector of its own (own group and generation) over the same log, undisturbed,
        and an API serving what it built: the state a single clean pass gives."""
        tag = uuid.uuid4().hex[:8]
        projector = self.procs.service(
            "projector", "clean-projector", group_id=f"clean-{tag}", generation=f"clean{tag}"
        )
        api = self.procs.service("api", "clean-api", generation=f"clean{tag}")
        for service in (projector, api):
            service.start()
        try:
            for service in (projector, api):
                await service.wait_started(self.http)
            return await self.reader(api.url).converge(messages)
        finally:
            for service in (projector, api):
                service.terminate()

    async def fold_seconds(self, events: int, processes: int) -> float:
        """Seconds ``processes`` projectors of a fresh group take to fold the log's ``events``,
        from the first event folded to the last (group joins and rebalances included)."""
        tag = uuid.uuid4().hex[:8]
        projectors = [
            self.procs.service(
                "projector", f"timed{processes}-{i}", group_id=f"timed-{tag}", generation=f"t{tag}"
            )
            for i in range(processes)
        ]
        for p in projectors:
            p.start()
        try:
            for p in projectors:
                await p.wait_started(self.http)
            await wait_applied(self.http, projectors, 1, timeout=60)
            first = time.monotonic()
            await wait_applied(self.http, projectors, events)
            return time.monotonic() - first
        finally:
            for p in projectors:
                p.terminate()


@pytest.fixture
def cluster() -> None:
    """All three brokers run when the test starts (a previous test may have killed one)."""
    brokers.ensure_running()


@pytest.fixture
async def deployment(cluster: None, tmp_path: pathlib.Path) -> AsyncIterator[Deployment]:
    """Settings of this test's processes; every process it started is killed at the end."""
    tag = uuid.uuid4().hex[:10]
    secret, api_key = new_secret(), f"key-{uuid.uuid4().hex}"
    procs = Processes(
        {
            "MSGSTATUS_KAFKA_BOOTSTRAP_SERVERS": brokers.BOOTSTRAP,
            "MSGSTATUS_REDIS_URL": REDIS_URL,
            "MSGSTATUS_TOPIC": f"fault-{tag}",
            "MSGSTATUS_TOPIC_PARTITIONS": "6",
            "MSGSTATUS_TOPIC_REPLICATION_FACTOR": "3",
            "MSGSTATUS_GROUP_ID": f"group-{tag}",
            "MSGSTATUS_GENERATION": f"f{tag}",
            "MSGSTATUS_WEBHOOK_SECRET": secret,
            "MSGSTATUS_API_KEYS": api_key,
            "MSGSTATUS_GENERATION_POLL_S": "0.2",
            "MSGSTATUS_POLL_TIMEOUT_MS": "50",
            "MSGSTATUS_LOG_FORMAT": "text",
            "MSGSTATUS_LOG_LEVEL": "WARNING",
        },
        tmp_path,
    )
    async with aiohttp.ClientSession() as http:
        try:
            yield Deployment(
                procs, f"fault-{tag}", f"group-{tag}", f"f{tag}", secret, api_key, http
            )
        finally:
            await asyncio.to_thread(procs.close)


FIGURES: list[str] = []


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Figures:
    """Where a test states its figures; they are printed at the end of the run."""
    return Figures(request.node.name)


@dataclass
class Figures:
    """One test's figures (events sent, faults injected, answers), printed after the run."""

    test: str

    def state(self, **values: object) -> None:
        """Record ``name=value`` figures of this test."""
        FIGURES.append(f"{self.test}: " + ", ".join(f"{k}={v}" for k, v in values.items()))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print every figure the fault tests stated."""
    if FIGURES:
        terminalreporter.section("fault-test figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
