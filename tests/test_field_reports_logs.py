"""Field report: ``make run`` echoed the user's secrets; no log line may hold a secret, a full
phone number or a credential header, at any level.

Runs what ``make run`` runs (.ci/run-local.sh: the three services as processes) against the
test Kafka and Redis, with user-supplied secrets and DEBUG logging, sends the requests that
carry secrets and numbers (signed webhooks, provider callbacks with Basic credentials and a
token, wrong credentials, reads by phone number), stops it, and greps everything it printed.
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import os
import signal
import uuid
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import orjson
import pytest
from pydantic import SecretStr

from ingest.settings import IngestSettings
from query_api.settings import ApiSettings
from runtime.redact import Redactor, secrets_of
from tests.factories import acceptance, new_secret, sign
from tests.support.ports import free_port
from tests.support.stack import KAFKA, REDIS_URL

ROOT = Path(__file__).resolve().parent.parent
PHONE = "+15557301234"
SMPP_PHONE = "+15557305678"


async def test_make_run_prints_and_logs_no_secret_or_number() -> None:
    """User-supplied secrets appear only as placeholders in the banner and nowhere in the
    logs; full phone numbers and Authorization values appear nowhere."""
    tag = uuid.uuid4().hex[:10]
    api_key, secret = f"user-key-{uuid.uuid4().hex}", new_secret()
    infobip_password, smpp_token = f"ib-{uuid.uuid4().hex}", f"tok-{uuid.uuid4().hex}"
    ingest_port, api_port = free_port(), free_port()
    env = {
        **os.environ,
        "MSGSTATUS_KAFKA_BOOTSTRAP_SERVERS": KAFKA,
        "MSGSTATUS_REDIS_URL": REDIS_URL,
        "MSGSTATUS_TOPIC": f"test-logs-{tag}",
        "MSGSTATUS_GENERATION": f"l{tag}",
        "MSGSTATUS_API_KEYS": api_key,
        "MSGSTATUS_WEBHOOK_SECRET": secret,
        "MSGSTATUS_INFOBIP_WEBHOOK_USERNAME": "ib-user",
        "MSGSTATUS_INFOBIP_WEBHOOK_PASSWORD": infobip_password,
        "MSGSTATUS_SMPP_WEBHOOK_TOKEN": smpp_token,
        "MSGSTATUS_INGEST_PORT": str(ingest_port),
        "MSGSTATUS_API_PORT": str(api_port),
        "MSGSTATUS_METRICS_PORT": "0",
        "MSGSTATUS_LOG_LEVEL": "DEBUG",
        "MSGSTATUS_KEEP_INFRA": "1",
        "MSGSTATUS_STOP_GRACE": "20",
    }
    proc = await asyncio.create_subprocess_exec(
        "bash",
        str(ROOT / ".ci" / "run-local.sh"),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    ingest, api = f"http://127.0.0.1:{ingest_port}", f"http://127.0.0.1:{api_port}"
    basic = "Basic " + base64.b64encode(f"ib-user:{infobip_password}".encode()).decode()
    mid = str(uuid.uuid4())
    try:
        async with aiohttp.ClientSession() as http:
            await _wait_ready(http, ingest, api)
            body = orjson.dumps(acceptance(mid, phone=PHONE, provider="infobip", provider_id=mid))
            async with http.post(
                f"{ingest}/webhooks/events", data=body, headers=sign(secret, body)
            ) as r:
                assert r.status == 202
            bad = orjson.dumps({**acceptance(mid, phone=PHONE), "phoneNumber": PHONE + "x"})
            async with http.post(
                f"{ingest}/webhooks/events", data=bad, headers=sign(secret, bad)
            ) as r:
                assert r.status == 400
            async with http.post(
                f"{ingest}/webhooks/events", data=body, headers={"webhook-signature": "v1,x"}
            ) as r:
                assert r.status == 401
            report = {
                "results": [
                    {
                        "messageId": mid,
                        "to": PHONE.lstrip("+"),
                        "status": {"name": "DELIVERED_TO_HANDSET"},
                    }
                ]
            }
            for auth in (basic, "Basic " + base64.b64encode(b"ib-user:wrong-pass").decode()):
                async with http.post(
                    f"{ingest}/webhooks/infobip", json=report, headers={"Authorization": auth}
                ) as r:
                    assert r.status in (200, 401)
            query = urlencode(
                {"token": smpp_token, "messageId": mid, "type": "1", "to": SMPP_PHONE}
            )
            async with http.get(f"{ingest}/webhooks/smpp?{query}") as r:
                assert r.status == 200
            async with http.get(f"{ingest}/webhooks/smpp?token=wrong&to={SMPP_PHONE}") as r:
                assert r.status == 401
            for key in (api_key, "wrong-key"):
                async with http.get(
                    f"{api}/api/messagestatus/phonenumber/{PHONE.replace('+', '%2B')}",
                    headers={"X-Api-Key": key},
                ) as r:
                    assert r.status in (200, 403)
            await _wait_projected(http, api, api_key, mid)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
    text = out.decode(errors="replace")
    assert "started msgstatus projector" in text, text[-2000:]
    assert "DEBUG" in text
    assert "MSGSTATUS_API_KEYS=$MSGSTATUS_API_KEYS" in text
    assert "MSGSTATUS_WEBHOOK_SECRET=$MSGSTATUS_WEBHOOK_SECRET" in text
    for value in (api_key, secret, secret.removeprefix("whsec_"), infobip_password, smpp_token):
        assert value not in text
    assert basic.split()[1] not in text
    for number in (PHONE, SMPP_PHONE):
        for form in (number, number.lstrip("+"), number.replace("+", "%2B")):
            assert form not in text, form


async def _wait_ready(http: aiohttp.ClientSession, *bases: str) -> None:
    for _ in range(600):
        try:
            ok = True
            for base in bases:
                async with http.get(f"{base}/readyz") as r:
                    ok = ok and r.status == 200
            if ok:
                return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError("the services did not become ready")


async def _wait_projected(http: aiohttp.ClientSession, api: str, key: str, mid: str) -> None:
    for _ in range(300):
        async with http.get(f"{api}/api/messagestatus/{mid}", headers={"X-Api-Key": key}) as r:
            if r.status == 200 and (await r.json())["message"]["status"] == "DELIVERED":
                return
        await asyncio.sleep(0.1)
    raise AssertionError("the message was not projected")


def test_redactor_masks_what_a_library_might_log(caplog: pytest.LogCaptureFixture) -> None:
    """Whatever a library logs (a request line with a token, headers, a body with numbers, an
    exception with the secret in it) reaches the handler masked."""
    handler = logging.StreamHandler(io.StringIO())
    handler.addFilter(Redactor(["s3cr3t-value"]))
    logger = logging.getLogger("test.redact")
    logger.addHandler(handler)
    try:
        logger.warning("GET /webhooks/smpp?token=abc123&to=%%2B15557301234 from %s", "x")
        logger.warning(
            "headers: %s", {"Authorization": "Basic aWItdXNlcjpwdw==", "X-Api-Key": "k1"}
        )
        logger.warning('body {"msisdn": "15557301234", "to": "+4915112345678"}')
        try:
            raise ValueError("bad secret s3cr3t-value")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    stream = handler.stream
    assert isinstance(stream, io.StringIO)
    text = stream.getvalue()
    for leaked in ("abc123", "15557301234", "4915112345678", "aWItdXNlcjpwdw", "k1'", "s3cr3t"):
        assert leaked not in text, (leaked, text)
    assert "+49***78" in text
    assert "Traceback" in text


def test_secrets_of_settings() -> None:
    """Every SecretStr setting and the API keys are secrets."""
    settings = ApiSettings(api_keys=["k-one", "k-two"])
    assert secrets_of(settings) == ["k-one", "k-two"]
    ingest = IngestSettings(webhook_secret=SecretStr("whsec_x"), smpp_webhook_token=SecretStr("t"))
    assert {"whsec_x", "t"} <= set(secrets_of(ingest))
