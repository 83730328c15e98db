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
    assert await ready() == (503, {"status": "unavailable", "checks": {"redis": False}})
    await asyncio.to_thread(own_redis.start)

    async def back() -> bool:
        return (await ready())[0] == 200

    await stack.wait_for(back, 15, "the api to be ready again")
