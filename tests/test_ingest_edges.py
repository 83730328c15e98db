"""Ingest under malformed and hostile requests: clear 4xx answers, never a 500."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.factories import sign
from tests.support.stack import Stack, new_stack


@pytest.fixture(scope="module")
async def ingest_only() -> AsyncIterator[Stack]:
    """Ingest (and API) without a projector, with a short body timeout."""
    s = new_stack()
    await s.start(projector=False, body_timeout_s=0.5)
    yield s
    await s.close()


async def test_a_signed_body_that_is_not_utf8_is_400_not_401(ingest_only: Stack) -> None:
    """JSON is UTF-8: a body that is not is named as the problem, whatever its signature."""
    body = b'{"status": "\xff"}'
    # Well-formed signature headers (of another body): they pass the check made before the
    # body is read, so the body itself is what is refused.
    headers = sign(ingest_only.secret, b"{}")
    reply = await ingest_only.post(body, headers=headers)
    assert reply.status == 400
    assert reply.body["errors"][0]["field"] == "body"


async def test_a_malformed_signature_header_is_401_without_parser_internals(
    ingest_only: Stack,
) -> None:
    """'v1' without a comma is a failed signature with a plain explanation."""
    body = b"{}"
    headers = {**sign(ingest_only.secret, body), "webhook-signature": "v1"}
    reply = await ingest_only.post(body, headers=headers)
    assert reply.status == 401
    assert "unpack" not in reply.body["detail"]
    assert "malformed" in reply.body["detail"]


async def test_a_stalled_upload_gets_408_and_never_a_500(ingest_only: Stack) -> None:
    """A client that announces more body than it sends is answered 408 after the timeout
    (with well-formed signature headers: without them it is a 401 before the body is read)."""
    host, port = ingest_only.ingest_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    headers = sign(ingest_only.secret, b"{}")
    signed = "".join(f"{k}: {v}\r\n" for k, v in headers.items() if k != "content-type")
    writer.write(
        b"POST /webhooks/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + signed.encode()
        + b'Content-Length: 100\r\n\r\n{"status"'
    )
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    assert status_line.startswith(b"HTTP/1.1 408")
