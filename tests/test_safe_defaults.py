"""Safe defaults and readiness: nothing configured means nothing allowed; /readyz tells the
truth about Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from standardwebhooks.webhooks import Webhook

from ingest.app import create_app as create_ingest
from ingest.settings import IngestSettings
from query_api.app import create_app as create_api
from query_api.settings import ApiSettings
from tests.factories import SEED_ID, acceptance, sign
from tests.support.ports import free_port
from tests.support.redis_server import LocalRedis
from tests.support.stack import Stack

READS = (
    f"/api/messagestatus/{SEED_ID}",
    f"/api/messagestatus/{SEED_ID}/history",
    "/api/messagestatus/phonenumber/+1234567890",
    "/api/messagestatus/reference/EXT_KEY",
)


async def test_an_api_without_keys_answers_every_read_403(stack: Stack) -> None:
    """MSGSTATUS_API_KEYS unset: every read is 403, whatever X-Api-Key says (empty included)."""
    settings = ApiSettings(**stack.common(), generation=stack.generation)
    assert settings.api_keys == []
    base = await stack._serve(create_api(settings))
    for path in READS:
        for headers in ({}, {"X-Api-Key": ""}, {"X-Api-Key": stack.api_key}):
            async with stack.http.get(base + path, headers=headers) as resp:
                assert resp.status == 403, (path, headers)
                assert resp.headers["Content-Type"].startswith("application/problem+json")


async def test_an_ingest_without_a_webhook_secret_answers_401(stack: Stack) -> None:
    """MSGSTATUS_WEBHOOK_SECRET unset: every canonical webhook is 401, signed or not."""
    settings = IngestSettings(**stack.common())
    assert settings.webhook_secret is None
    base = await stack._serve(create_ingest(settings))
    body = orjson.dumps(acceptance(str(uuid.uuid4())))
    for headers in ({"content-type": "application/json"}, sign(stack.secret, body)):
        async with stack.http.post(base + "/webhooks/events", data=body, headers=headers) as resp:
            assert resp.status == 401
            assert resp.headers["Content-Type"].startswith("application/problem+json")


@pytest.mark.parametrize("age", [timedelta(minutes=6), timedelta(minutes=-6)])
async def test_a_stale_or_future_webhook_timestamp_is_refused(stack: Stack, age: timedelta) -> None:
    """A correct signature over a webhook-timestamp more than 5 minutes off is a 401: a
    captured request cannot be replayed later."""
    body = orjson.dumps(acceptance(str(uuid.uuid4())))
    when = datetime.now(tz=UTC) - age
    msg_id = f"msg_{uuid.uuid4().hex}"
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": Webhook(stack.secret).sign(msg_id, when, body.decode()),
        "content-type": "application/json",
    }
    reply = await stack.post(body, headers=headers)
    assert reply.status == 401
    assert "timestamp" in reply.body["detail"].lower()


@pytest.fixture
async def own_redis() -> AsyncIterator[LocalRedis]:
    """A Redis of this test's own, which it stops."""
    server = LocalRedis(free_port())
    await asyncio.to_thread(server.start)
    yield server
    await asyncio.to_thread(server.stop)


async def test_api_readiness_is_503_while_redis_is_down(
    stack: Stack, own_redis: LocalRedis
) -> None:
    """/readyz is 200 while Redis answers, 503 naming redis while it is down, 200 again after."""
    settings = ApiSettings(**{**stack.common(), "redis_url": own_redis.url}, api_keys=["k"])
    base = await stack._serve(create_api(settings))

    async def ready() -> tuple[int, object]:
        async with stack.http.get(base + "/readyz") as resp:
            return resp.status, await resp.json()

    assert (await ready())[0] == 200
    await asyncio.to_thread(own_redis.stop)
    status, body = await ready()
    assert status == 503
    assert isinstance(body, dict)
    assert body["status"] == "unavailable"
    assert body["checks"]["redis"] is False
    await asyncio.to_thread(own_redis.start)

    async def back() -> bool:
        return (await ready())[0] == 200

    await stack.wait_for(back, 15, "the api to be ready again")


async def test_a_hung_redis_is_a_prompt_503_not_a_wait(stack: Stack, own_redis: LocalRedis) -> None:
    """With Redis frozen (connections open, no answers), reads and /readyz answer 503 within
    a few seconds (the read timeout, retried), and reads work again once it resumes."""
    settings = ApiSettings(
        **{**stack.common(), "redis_url": own_redis.url}, api_keys=["k"], redis_timeout_s=0.5
    )
    base = await stack._serve(create_api(settings))
    headers = {"X-Api-Key": "k"}
    read = base + f"/api/messagestatus/{SEED_ID}"
    async with stack.http.get(read, headers=headers) as resp:
        assert resp.status == 404  # Redis answers: an unknown message
    await asyncio.to_thread(own_redis.pause)
    try:
        started = asyncio.get_running_loop().time()
        async with stack.http.get(read, headers=headers) as resp:
            assert resp.status == 503
            assert resp.headers["Retry-After"]
        async with stack.http.get(base + "/readyz") as resp:
            assert resp.status == 503
        # The read's own bound (twice the 0.5 s timeout), then /readyz's 1 s bound: a hung
        # Redis used to hold each request for the OS's TCP timeout (tens of seconds), then
        # for 14-17 s once reconnects and health checks queued behind each other.
        assert asyncio.get_running_loop().time() - started < 3

        async def timed_read(path: str) -> tuple[int, float]:
            begun = asyncio.get_running_loop().time()
            async with stack.http.get(base + path, headers=headers) as resp:
                return resp.status, asyncio.get_running_loop().time() - begun

        paths = [
            f"/api/messagestatus/{SEED_ID}",
            "/api/messagestatus/phonenumber/%2B1234567890",
            f"/api/messagestatus/{SEED_ID}/deliveries",
        ]
        for _ in range(3):  # later reads too, many at once: each a 503 within its bound
            answers = await asyncio.gather(*(timed_read(p) for p in paths * 6))
            assert all(status == 503 for status, _ in answers), answers
            assert max(took for _, took in answers) < 3, answers
    finally:
        await asyncio.to_thread(own_redis.resume)

    async def back() -> bool:
        async with stack.http.get(read, headers=headers) as resp:
            return resp.status == 404

    await stack.wait_for(back, 15, "reads to work again")
