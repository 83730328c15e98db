"""The three services run in-process against the real Kafka and Redis, isolated per stack.

Each stack gets its own topic, consumer group and projection generation, so tests sharing a
broker and a Redis never see each other's data.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import SecretStr
from redis.asyncio import Redis

from ingest.app import create_app as create_ingest
from ingest.settings import IngestSettings
from projector import generations
from projector.positions import positions_key
from projector.runner import Projector
from projector.settings import ProjectorSettings
from query_api.app import create_app as create_api
from query_api.settings import ApiSettings
from runtime import redis_client
from tests.factories import new_secret, sign

KAFKA = os.environ.get("MSGSTATUS_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
REDIS_URL = os.environ.get("MSGSTATUS_REDIS_URL", "redis://127.0.0.1:6379/0")


@dataclass
class Reply:
    """An HTTP answer: status, headers and the body (parsed when JSON)."""

    status: int
    headers: dict[str, str]
    body: Any
    raw: bytes


@dataclass
class Stack:
    """Running ingest, projector and read API; URLs, credentials and helpers for tests."""

    kafka: str
    topic: str
    generation: str
    secret: str
    api_key: str
    redis_url: str = REDIS_URL
    pinned: bool = True
    ingest_url: str = ""
    api_url: str = ""
    http: aiohttp.ClientSession = field(init=False)
    redis: Redis = field(init=False)
    _runners: list[web.AppRunner] = field(default_factory=list)
    _projector: Projector | None = None
    _projector_task: asyncio.Task[None] | None = None

    async def post(
        self,
        body: Any,
        *,
        path: str = "/webhooks/events",
        secret: str | None = None,
        headers: dict[str, str] | None = None,
        webhook_id: str | None = None,
    ) -> Reply:
        """POST a canonical body (dict/list, or raw bytes) signed with the stack's secret."""
        raw = body if isinstance(body, bytes) else orjson.dumps(body)
        hdrs = sign(secret or self.secret, raw, webhook_id) if headers is None else headers
        async with self.http.post(self.ingest_url + path, data=raw, headers=hdrs) as resp:
            return await _reply(resp)

    async def get(self, path: str, *, api_key: str | None = "default") -> Reply:
        """GET from the read API with the stack's key (``api_key=None`` sends no key)."""
        headers = {}
        if api_key is not None:
            headers["X-Api-Key"] = self.api_key if api_key == "default" else api_key
        async with self.http.get(self.api_url + path, headers=headers) as resp:
            return await _reply(resp)

    async def wait_for(
        self, probe: Callable[[], Awaitable[bool]], timeout: float = 15.0, what: str = ""
    ) -> None:
        """Poll ``probe`` until it returns True; fail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await probe():
                return
            task = self._projector_task
            if task is not None and task.done():
                raise AssertionError(f"the projector stopped: {task.exception()!r}")
            await asyncio.sleep(0.05)
        raise AssertionError(f"timed out after {timeout}s waiting for {what or probe}")

    async def wait_for_status(self, message_id: str, status: str, timeout: float = 15.0) -> Reply:
        """Wait until ``GET /api/messagestatus/{id}`` answers 200 with ``status``."""
        last: list[Reply] = []

        async def probe() -> bool:
            reply = await self.get(f"/api/messagestatus/{message_id}")
            last[:] = [reply]
            return reply.status == 200 and reply.body["message"]["status"] == status

        try:
            await self.wait_for(probe, timeout, f"{message_id} to be {status}")
        except AssertionError as exc:
            seen = last[0] if last else None
            raise AssertionError(
                f"{exc}; last answer: {seen and (seen.status, seen.body)}"
            ) from None
        return last[0]

    async def wait_for_list(self, path: str, count: int, timeout: float = 15.0) -> Reply:
        """Wait until a list endpoint answers 200 with at least ``count`` messages.

        Index entries are written right after the message document, so a list can trail a
        read by id by a few milliseconds.
        """
        last: list[Reply] = []

        async def probe() -> bool:
            reply = await self.get(path)
            last[:] = [reply]
            return reply.status == 200 and len(reply.body["messages"]) >= count

        await self.wait_for(probe, timeout, f"{count} messages at {path}")
        return last[0]

    async def wait_for_history(self, message_id: str, count: int, timeout: float = 15.0) -> Reply:
        """Wait until the message's history holds ``count`` events."""
        last: list[Reply] = []

        async def probe() -> bool:
            reply = await self.get(f"/api/messagestatus/{message_id}/history")
            last[:] = [reply]
            return reply.status == 200 and len(reply.body["events"]) >= count

        await self.wait_for(probe, timeout, f"{count} events of {message_id}")
        return last[0]

    async def wait_caught_up(self, timeout: float = 15.0) -> None:
        """Wait until the projection reflects every record in the topic right now.

        The projector records, per partition, the next offset its generation reflects
        (``projector.positions.positions_key``); once those reach the topic's end offsets taken
        here, every record posted before this call has been applied (or parked, or
        dead-lettered). Use it instead of sleeping before asserting that nothing happened.
        """
        consumer = AIOKafkaConsumer(bootstrap_servers=self.kafka)
        await consumer.start()
        try:
            parts = consumer.partitions_for_topic(self.topic)
            if not parts:
                await consumer._client.force_metadata_update()
                parts = consumer.partitions_for_topic(self.topic) or set()
            tps = [TopicPartition(self.topic, p) for p in parts]
            ends: dict[TopicPartition, int] = await consumer.end_offsets(tps)
        finally:
            await consumer.stop()
        wanted = {f"{tp.topic}:{tp.partition}".encode(): end for tp, end in ends.items() if end}

        async def caught_up() -> bool:
            generation = self.generation if self.pinned else await generations.served(self.redis)
            positions = await self.redis.hgetall(positions_key(generation))
            return all(int(positions.get(name, 0)) >= end for name, end in wanted.items())

        await self.wait_for(caught_up, timeout, f"the projection to reach {ends}")

    # --- lifecycle -------------------------------------------------------------------
    def common(self) -> dict[str, Any]:
        """Settings every service of this stack shares."""
        return {
            "kafka_bootstrap_servers": self.kafka,
            "redis_url": self.redis_url,
            "topic": self.topic,
            "topic_partitions": 3,
            "log_format": "text",
        }

    async def start(
        self,
        *,
        projector: bool = True,
        api_overrides: dict[str, Any] | None = None,
        **ingest_overrides: Any,
    ) -> Stack:
        """Start the services (ingest on a free port, API on a free port, projector task);
        ``ingest_overrides`` and ``api_overrides`` are settings of ingest and the API."""
        self.http = aiohttp.ClientSession()
        self.redis = redis_client.async_client(self.redis_url)
        ingest = create_ingest(
            IngestSettings(
                **self.common(),
                webhook_secret=SecretStr(self.secret),
                produce_timeout_s=3.0,
                **ingest_overrides,
            )
        )
        self.ingest_url = await self._serve(ingest)
        api = create_api(
            ApiSettings(
                **self.common(),
                api_keys=[self.api_key],
                generation=self.generation if self.pinned else "",
                generation_poll_s=0.2,
                **(api_overrides or {}),
            )
        )
        self.api_url = await self._serve(api)
        await self.wait_for(self._ingest_ready, 60, "ingest to reach Kafka")
        if projector:
            await self.start_projector()
        return self

    def ingest_app(self) -> web.Application:
        """The running ingest application (its first runner), for tests that reach inside."""
        app = self._runners[0].app
        assert isinstance(app, web.Application)
        return app

    async def _ingest_ready(self) -> bool:
        async with self.http.get(self.ingest_url + "/readyz") as resp:
            return resp.status == 200

    async def start_projector(self) -> None:
        """Start a projector of this stack's group and generation as a background task."""
        self._projector = Projector(
            ProjectorSettings(
                **self.common(),
                group_id=f"test-{self.topic}",
                generation=self.generation if self.pinned else "",
                metrics_port=0,
                poll_timeout_ms=50,
            )
        )
        self._projector_task = asyncio.create_task(self._projector.run())

    async def stop_projector(self) -> None:
        """Stop the projector gracefully (finish batch, commit, leave the group)."""
        if self._projector is not None and self._projector_task is not None:
            self._projector.stop()
            await asyncio.wait_for(self._projector_task, 30)
            self._projector = self._projector_task = None

    async def _serve(self, app: web.Application) -> str:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runners.append(runner)
        server = site._server
        assert isinstance(server, asyncio.base_events.Server)
        port = int(server.sockets[0].getsockname()[1])
        return f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        """Stop everything this stack started."""
        await self.stop_projector()
        for runner in reversed(self._runners):
            await runner.cleanup()
        await self.http.close()
        await self.redis.aclose()


def new_stack(kafka: str = KAFKA, redis_url: str = REDIS_URL, pinned: bool = True) -> Stack:
    """A stack with fresh topic, generation, webhook secret and API key (not started).

    ``pinned=False`` makes the projector and API follow ``msgstatus:generation`` (replay
    tests); such a stack must have a Redis database of its own (``redis_url``).
    """
    tag = uuid.uuid4().hex[:10]
    return Stack(
        kafka=kafka,
        topic=f"test-{tag}",
        generation=f"t{tag}",
        secret=new_secret(),
        api_key=f"key-{uuid.uuid4().hex}",
        redis_url=redis_url,
        pinned=pinned,
    )


async def _reply(resp: aiohttp.ClientResponse) -> Reply:
    raw = await resp.read()
    body: Any = None
    if raw and "json" in resp.headers.get("Content-Type", ""):
        body = orjson.loads(raw)
    return Reply(resp.status, dict(resp.headers), body, raw)
