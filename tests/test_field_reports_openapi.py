"""Field report: the OpenAPI documents must describe what the services accept.

A bounded, seeded schemathesis run (``--checks all``, coverage and fuzzing phases) against
``/openapi.json`` of the read API and of ingest, each served by the real stack; zero
failures. The CLI runs as a subprocess, so the services keep serving on this event loop.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from tests.factories import acceptance
from tests.support.providers import VONAGE_SECRET
from tests.support.stack import Stack, new_stack

ST = shutil.which("st", path=str(Path(sys.executable).parent)) or "st"
CONFIG = Path(__file__).parent / "support" / "schemathesis.toml"
SEED = "20260801"
MAX_EXAMPLES = "15"


@pytest.fixture(scope="module")
async def stack() -> AsyncIterator[Stack]:
    """A stack with every provider's credentials configured, as deployed."""
    s = new_stack()
    await s.start(
        twilio_auth_token="twilio-auth-token-" + "0" * 14,
        vonage_signature_secret=VONAGE_SECRET,
        infobip_webhook_username="infobip-user",
        infobip_webhook_password="infobip-password-0001",
        sinch_webhook_username="sinch-user",
        sinch_webhook_password="sinch-password-0001",
        smpp_webhook_token="smpp-token-0123456789",
    )
    yield s
    await s.close()


async def schemathesis(base: str, *headers: str) -> tuple[int, str]:
    """Run ``st run`` against ``base``/openapi.json; (exit code, output). It runs in a
    temporary directory: schemathesis keeps a cache of crashes in its working directory."""
    args = [
        "--no-color",
        "run",
        f"{base}/openapi.json",
        "--checks",
        "all",
        "--phases",
        "coverage,fuzzing",
        "--max-examples",
        MAX_EXAMPLES,
        "--seed",
        SEED,
        "--workers",
        "1",
        "--request-timeout",
        "10",
    ]
    for header in headers:
        args += ["-H", header]
    with tempfile.TemporaryDirectory() as workdir:
        proc = await asyncio.create_subprocess_exec(
            ST,
            "--config-file",
            str(CONFIG),
            *args,
            cwd=workdir,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 300)
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


async def test_read_api_answers_what_its_document_allows(stack: Stack) -> None:
    """Every request the read API's document allows gets a documented answer."""
    code, out = await schemathesis(stack.api_url, f"X-Api-Key: {stack.api_key}")
    assert code == 0, out[-6000:]


async def test_ingest_answers_what_its_document_allows(stack: Stack) -> None:
    """Ingest serves a document for /webhooks/events and the provider routes, and answers
    every request it allows with a documented status (unsigned ones: 401 or 503)."""
    code, out = await schemathesis(stack.ingest_url)
    assert code == 0, out[-6000:]


async def test_cursor_and_reference_cases_of_the_report(stack: Stack) -> None:
    """The report's cases: a schema-valid cursor is accepted, ``0`` is not one (400 naming
    ``cursor``), and a reference key with a line break is a 400, not a routing 404."""
    ok = await stack.get(
        "/api/messagestatus/phonenumber/%2B1?count=50&cursor=0_011d9d6e-b5b9-4cb9-be13-2bc336a923ce"
    )
    assert ok.status == 200, ok.body
    bad = await stack.get("/api/messagestatus/reference/0?cursor=0")
    assert bad.status == 400
    assert bad.body["errors"][0]["field"] == "cursor"
    odd = await stack.get("/api/messagestatus/reference/%0A%C3%ACz")
    assert odd.status == 400, odd.raw
    huge = await stack.get("/api/messagestatus/phonenumber/%2B1?count=" + "9" * 5000)
    assert huge.status == 400
    assert huge.body["errors"][0]["field"] == "count"


async def test_numbers_of_any_length_in_a_canonical_body(stack: Stack) -> None:
    """``sms.segments`` of 30 digits is a 400 naming it; of 5,000 digits (beyond what a JSON
    number can hold) a 400 naming the body; never a 500."""
    event = acceptance(str(uuid.uuid4()))
    body = orjson.dumps(event).replace(b'"segments":1', b'"segments":' + b"9" * 30)
    reply = await stack.post(body)
    assert reply.status == 400
    assert [e["field"] for e in reply.body["errors"]] == ["sms.segments"]
    body = orjson.dumps(event).replace(b'"segments":1', b'"segments":' + b"9" * 5000)
    reply = await stack.post(body)
    assert reply.status == 400
    assert reply.body["errors"][0]["field"] == "body"
