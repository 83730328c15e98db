"""SIGTERM under load: the real processes finish in-flight work; no accepted event is lost."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from redis.asyncio import Redis

from projector import generations
from projector.store import ProjectionStore
from schemas.events import EventRecord
from schemas.layout import Layout
from schemas.status import Status
from tests.factories import acceptance, new_secret, record, sign
from tests.support.kafka_util import read_all
from tests.support.ports import free_port
from tests.support.stack import KAFKA, REDIS_URL

MSGSTATUS = [sys.executable, "-m", "msgstatus"]


async def spawn(command: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    """Start ``msgstatus <command>`` with ``MSGSTATUS_*`` settings from ``env``.

    Its log goes to an unnamed temporary file, not a pipe: nobody reads it here, and a full
    pipe would block the process at its next log line.
    """
    with tempfile.TemporaryFile() as log:  # the child keeps its own descriptor
        return await asyncio.create_subprocess_exec(
            *MSGSTATUS,
            command,
            env={**os.environ, "MSGSTATUS_LOG_FORMAT": "text", **env},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=log,
        )


@pytest.fixture
def topic() -> str:
    """A fresh topic name per test."""
    return f"test-sd-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.mark.slow
async def test_sigterm_to_ingest_under_load_loses_no_acknowledged_event(
    topic: str, http: aiohttp.ClientSession
) -> None:
    """Every webhook answered 202 before or during shutdown is in Kafka; the process exits 0."""
    port, secret = free_port(), new_secret()
    proc = await spawn(
        "ingest",
        {
            "MSGSTATUS_KAFKA_BOOTSTRAP_SERVERS": KAFKA,
            "MSGSTATUS_TOPIC": topic,
            "MSGSTATUS_INGEST_PORT": str(port),
            "MSGSTATUS_WEBHOOK_SECRET": secret,
        },
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            async with http.get(url + "/readyz") as resp:
                if resp.status == 200:
                    break
        except aiohttp.ClientError:
            pass
        assert time.monotonic() < deadline, "ingest did not become ready"
        await asyncio.sleep(0.1)

    acknowledged: list[str] = []

    async def sender(n: int) -> None:
        for _ in range(n):
            body = orjson.dumps(acceptance(str(uuid.uuid4())))
            try:
                async with http.post(
                    url + "/webhooks/events", data=body, headers=sign(secret, body)
                ) as resp:
                    if resp.status == 202:
                        acknowledged.extend((await resp.json())["eventIds"])
                    else:
                        assert resp.status in (503,), resp.status
            except aiohttp.ClientError:
                return  # the server stopped accepting: the provider retries later

    senders = [asyncio.create_task(sender(100)) for _ in range(16)]
    deadline = time.monotonic() + 30
    while len(acknowledged) < 50:  # under load before the signal
        assert time.monotonic() < deadline, "no webhook acknowledged"
        await asyncio.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    await asyncio.gather(*senders)
    assert await asyncio.wait_for(proc.wait(), 30) == 0
    assert len(acknowledged) > 50
    logged = {v["eventId"] for v in await read_all(KAFKA, topic, timeout_ms=2000)}
    assert set(acknowledged) <= logged


async def produce_acceptances(topic: str, n: int) -> list[str]:
    """Write n acceptance records straight to the log; returns the message ids."""
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA, acks="all", linger_ms=5)
    await producer.start()
    ids = []
    try:
        from projector.settings import ProjectorSettings  # noqa: PLC0415
        from runtime.topics import ensure_topics  # noqa: PLC0415

        await ensure_topics(
            ProjectorSettings(kafka_bootstrap_servers=KAFKA, topic=topic, topic_partitions=3)
        )
        futures = []
        for _ in range(n):
            mid = str(uuid.uuid4())
            ids.append(mid)
            rec = EventRecord.model_validate(
                {
                    "eventId": str(uuid.uuid4()),
                    "messageId": mid,
                    "status": Status.PROVIDER_ACCEPTANCE,
                    "occurredAt": int(time.time() * 1000),
                    "receivedAt": int(time.time() * 1000),
                    "channel": "SMS",
                    "phoneNumber": "+15550100001",
                    "provider": {"name": "P", "id": mid, "status": "accepted", "code": "0"},
                }
            )
            futures.append(await producer.send(topic, rec.to_json(), key=mid.encode()))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return ids


async def present_count(redis: Redis, generation: str, ids: list[str]) -> int:
    """How many of ``ids`` the (format-2, default-bucket) generation holds."""
    layout = Layout(generation)
    async with redis.pipeline(transaction=False) as pipe:
        for mid in ids:
            pipe.hexists(layout.message_key(mid), mid)
        return sum(bool(x) for x in await pipe.execute())


@pytest.mark.slow
async def test_sigterm_to_projector_commits_only_applied_records_and_resumes(topic: str) -> None:
    """After SIGTERM every committed record is in Redis; a restart applies the rest, none lost."""
    generation = f"sd{uuid.uuid4().hex[:8]}"
    group = f"g-{topic}"
    ids = await produce_acceptances(topic, 6000)
    env = {
        "MSGSTATUS_KAFKA_BOOTSTRAP_SERVERS": KAFKA,
        "MSGSTATUS_REDIS_URL": REDIS_URL,
        "MSGSTATUS_TOPIC": topic,
        "MSGSTATUS_GROUP_ID": group,
        "MSGSTATUS_GENERATION": generation,
        "MSGSTATUS_METRICS_PORT": "0",
        "MSGSTATUS_BATCH_MAX_RECORDS": "200",
    }
    redis = Redis.from_url(REDIS_URL)
    try:
        proc = await spawn("projector", env)
        deadline = time.monotonic() + 60
        while await present_count(redis, generation, ids[:1]) == 0:
            assert time.monotonic() < deadline, "projector did not start applying"
            await asyncio.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0

        consumer = AIOKafkaConsumer(
            bootstrap_servers=KAFKA, group_id=group, enable_auto_commit=False
        )
        await consumer.start()
        try:
            committed_ids: list[str] = []
            records = await read_all_records(topic)
            for tp, recs in records.items():
                offset = await consumer.committed(tp) or 0
                committed_ids += [r for r, off in recs if off < offset]
        finally:
            await consumer.stop()
        assert committed_ids, "the projector committed nothing before it stopped"
        present = await present_count(redis, generation, committed_ids)
        assert present == len(committed_ids)

        proc = await spawn("projector", env)
        deadline = time.monotonic() + 60
        while await present_count(redis, generation, ids) < len(ids):
            assert time.monotonic() < deadline, "the restarted projector did not catch up"
            await asyncio.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        await redis.aclose()


async def read_all_records(topic: str) -> dict[TopicPartition, list[tuple[str, int]]]:
    """(message id, offset) of every record per partition."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=KAFKA, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    out: dict[TopicPartition, list[tuple[str, int]]] = {}
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=1500)
            if not batch:
                return out
            for tp, recs in batch.items():
                out.setdefault(tp, []).extend(
                    (orjson.loads(r.value)["messageId"], r.offset) for r in recs
                )
    finally:
        await consumer.stop()


@pytest.mark.slow
async def test_sigterm_to_api_under_load_answers_in_flight_reads_and_exits_cleanly(
    http: aiohttp.ClientSession,
) -> None:
    """Reads in flight at SIGTERM are answered with the message asked for (never a 5xx, never
    a dropped connection); only new connections are refused; the process exits 0."""
    generation = f"sd{uuid.uuid4().hex[:8]}"
    mid = str(uuid.uuid4())
    client = Redis.from_url(REDIS_URL)
    layout = await generations.layout(client, generation)  # the generation's meta record
    await client.aclose()
    assert layout is not None
    store = ProjectionStore.from_url(REDIS_URL, layout, 86_400_000)
    now = int(time.time() * 1000)
    await store.apply([record(Status.PROVIDER_ACCEPTANCE, now, message_id=mid, received_ms=now)])
    port = free_port()
    proc = await spawn(
        "api",
        {
            "MSGSTATUS_REDIS_URL": REDIS_URL,
            "MSGSTATUS_API_PORT": str(port),
            "MSGSTATUS_API_KEYS": "k",
            "MSGSTATUS_GENERATION": generation,
        },
    )
    url = f"http://127.0.0.1:{port}/api/messagestatus/{mid}"
    deadline = time.monotonic() + 30
    while True:
        try:
            async with http.get(f"http://127.0.0.1:{port}/readyz") as resp:
                if resp.status == 200:
                    break
        except aiohttp.ClientError:
            pass
        assert time.monotonic() < deadline, "api did not become ready"
        await asyncio.sleep(0.1)
    answers: list[tuple[int, str]] = []
    dropped: list[str] = []

    async def reader() -> None:
        for _ in range(300):
            try:
                async with http.get(url, headers={"X-Api-Key": "k"}) as resp:
                    body = await resp.json()
                    answers.append((resp.status, body.get("message", {}).get("id", "")))
            except aiohttp.ClientConnectorError:
                return  # the listener is closed: a new connection, never an in-flight read
            except aiohttp.ClientError as exc:
                dropped.append(repr(exc))
                return

    readers = [asyncio.create_task(reader()) for _ in range(16)]
    deadline = time.monotonic() + 30
    while len(answers) < 50:  # under load before the signal
        assert time.monotonic() < deadline, "no reads answered"
        await asyncio.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    await asyncio.gather(*readers)
    # Generous: on a loaded 2-core machine the grace period plus clean-up can take a while.
    assert await asyncio.wait_for(proc.wait(), 60) == 0
    assert dropped == []
    assert set(answers) == {(200, mid)}
