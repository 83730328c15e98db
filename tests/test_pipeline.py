"""The walking skeleton end to end: webhook -> Kafka -> projector -> Redis -> read API."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.factories import SEED_DOCUMENT, SEED_ID, SEED_PROVIDER_ID, acceptance, receipt, sign
from tests.support.kafka_util import topic_size
from tests.support.stack import Stack


def seed_events(
    message_id: str = SEED_ID, phone: str = "+1234567890", key: str = "EXT_KEY"
) -> list[dict[str, Any]]:
    """The seed's example message as two canonical events: acceptance and DELIVERED."""
    return [
        acceptance(
            message_id,
            at="2026-02-04T06:54:35Z",
            phone=phone,
            reference={"service": "DIGITALSIGN", "action": "AUTH", "key": key},
            provider="PROVIDER1",
            provider_id=SEED_PROVIDER_ID,
        ),
        receipt("DELIVERED", "2026-02-04T06:54:55Z", message_id=message_id, code="0"),
    ]


async def test_seed_example_reads_back_on_all_three_endpoints(stack: Stack) -> None:
    """The seed's message, posted as events, reads back exactly as the seed's examples."""
    reply = await stack.post(seed_events())
    assert reply.status == 202, reply.body
    assert reply.body["accepted"] == 2
    by_id = await stack.wait_for_status(SEED_ID, "DELIVERED")
    assert by_id.body == SEED_DOCUMENT
    assert by_id.headers["Content-Type"].startswith("application/json")

    phone = await stack.wait_for_list(
        "/api/messagestatus/phonenumber/+1234567890?count=1&sendDate=2026-12-31T23:59:59Z", 1
    )
    assert phone.status == 200
    assert phone.body == {"messages": [SEED_DOCUMENT]}

    ref = await stack.wait_for_list(
        "/api/messagestatus/reference/EXT_KEY?count=2&sendDate=2026-12-31T23:59:59Z", 1
    )
    assert ref.status == 200
    assert ref.body == {"messages": [SEED_DOCUMENT]}


@pytest.mark.parametrize("key", [None, "", "wrong-key"])
async def test_missing_empty_or_wrong_api_key_gets_403(stack: Stack, key: str | None) -> None:
    """Every read endpoint answers 403 with a problem document without a valid X-Api-Key."""
    for path in (
        f"/api/messagestatus/{SEED_ID}",
        "/api/messagestatus/phonenumber/+1234567890",
        "/api/messagestatus/reference/EXT_KEY",
        f"/api/messagestatus/{SEED_ID}/history",
    ):
        reply = await stack.get(path, api_key=key)
        assert reply.status == 403, path
        assert reply.headers["Content-Type"].startswith("application/problem+json")
        assert reply.body["status"] == 403


async def test_unknown_message_id_gets_404(stack: Stack) -> None:
    """A well-formed id that no event named is a 404 problem document."""
    reply = await stack.get(f"/api/messagestatus/{uuid.uuid4()}")
    assert reply.status == 404
    assert reply.body["status"] == 404


async def test_bad_signature_gets_401_and_nothing_reaches_kafka(stack: Stack) -> None:
    """A tampered body, a wrong secret or no signature: 401, and the topic does not grow."""
    before = await topic_size(stack.kafka, stack.topic)
    body = (
        b'{"messageId": "%s", "status": "SENT", "occurredAt": "2026-02-04T06:54:40Z", "provider": {"status": "sent", "code": "0"}}'
        % str(uuid.uuid4()).encode()
    )
    headers = sign(stack.secret, body)
    tampered = body.replace(b"SENT", b"READ").replace(b'"sent"', b'"read"')
    assert (await stack.post(tampered, headers=headers)).status == 401
    from tests.factories import new_secret  # noqa: PLC0415

    assert (await stack.post(body, secret=new_secret())).status == 401
    assert (await stack.post(body, headers={"content-type": "application/json"})).status == 401
    garbage = {**headers, "webhook-signature": "v1"}
    assert (await stack.post(body, headers=garbage)).status == 401
    assert await topic_size(stack.kafka, stack.topic) == before


async def test_health_and_readiness_answer(stack: Stack) -> None:
    """Both HTTP services serve /healthz, /readyz (dependencies up) and /metrics."""
    for base in (stack.ingest_url, stack.api_url):
        for path, status in (("/healthz", 200), ("/readyz", 200), ("/metrics", 200)):
            async with stack.http.get(base + path) as resp:
                assert resp.status == status, base + path


async def test_metrics_count_webhooks_by_outcome_and_reads_by_route(stack: Stack) -> None:
    """/metrics counts rejected webhooks per endpoint and read requests per route and status."""
    assert (await stack.post(b"{}", headers={"content-type": "application/json"})).status == 401
    assert (await stack.get(f"/api/messagestatus/{uuid.uuid4()}")).status == 404
    async with stack.http.get(stack.ingest_url + "/metrics") as resp:
        ingest_metrics = await resp.text()
    async with stack.http.get(stack.api_url + "/metrics") as resp:
        api_metrics = await resp.text()
    assert 'msgstatus_webhooks_total{outcome="unauthenticated",source="events"}' in ingest_metrics
    assert (
        'msgstatus_http_requests_total{route="/api/messagestatus/{messageid}",service="api",status="404"}'
        in api_metrics
    )
