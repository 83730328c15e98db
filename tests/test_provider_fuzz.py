"""Hostile input that passes the signature check: mutated, correctly signed callbacks.

Every adapter gets valid callbacks that hypothesis mutates (values replaced by any JSON or
text, keys dropped or added, bodies cut short or spliced with bytes) and that are then signed
as the provider would sign them, so each one reaches the parser behind the check. Whatever
the mutation, ingest answers below 500 (an error is an RFC 9457 problem document; the
provider would otherwise retry a 5xx forever) and never hangs. Seeded (``derandomize``), a
fixed number of examples per adapter, against the real ingest and Kafka.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import acceptance, receipt
from tests.support.providers import (
    INFOBIP_PASSWORD,
    INFOBIP_USER,
    PROVIDER_SETTINGS,
    PUBLIC,
    SINCH_PASSWORD,
    SINCH_USER,
    SMPP_TOKEN,
    basic_header,
    twilio_form,
    twilio_signature,
    vonage_jwt,
    vonage_signed,
)
from tests.support.stack import Reply, Stack, new_stack
from tests.test_providers_e2e import call, infobip_report, messages_status, twilio_params

FORM = "application/x-www-form-urlencoded"
EXAMPLES = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
texts = st.text(max_size=40) | st.sampled_from(["", " ", "\x00", "\ufeff", "9" * 40, "-1", "null"])


@pytest.fixture(scope="module")
async def stack() -> AsyncIterator[Stack]:
    """Ingest with every adapter's credentials; no projector (only the answers matter)."""
    s = new_stack()
    await s.start(projector=False, **PROVIDER_SETTINGS)
    yield s
    await s.close()


def mutate_json(data: st.DataObject, value: Any, depth: int = 0) -> Any:
    """``value`` with one node replaced, dropped or added somewhere in its tree (never the
    whole document: the top level is always kept)."""
    keep = depth == 0 or data.draw(st.integers(0, 3)) > 0
    if isinstance(value, dict) and value and keep:
        key = data.draw(st.sampled_from(sorted(value)))
        op = data.draw(st.sampled_from(["descend", "replace", "drop", "add"]))
        out = dict(value)
        if op == "replace":
            out[key] = data.draw(json_values)
        elif op == "drop":
            del out[key]
        elif op == "add":
            out[data.draw(st.text(max_size=12))] = data.draw(json_values)
        else:
            out[key] = mutate_json(data, value[key], depth + 1)
        return out
    if isinstance(value, list) and value and keep:
        i = data.draw(st.integers(0, len(value) - 1))
        return [*value[:i], mutate_json(data, value[i], depth + 1), *value[i + 1 :]]
    return data.draw(json_values)


def mutate_bytes(data: st.DataObject, body: bytes) -> bytes:
    """``body`` as JSON mutated, or its bytes cut short or spliced with random bytes."""
    how = data.draw(st.sampled_from(["json", "json", "json", "cut", "splice"]))
    if how == "json":  # the standard library's encoder: integers beyond 64 bits too
        return json.dumps(mutate_json(data, orjson.loads(body)), ensure_ascii=False).encode()
    at = data.draw(st.integers(0, len(body)))
    if how == "cut":
        return body[:at]
    return body[:at] + data.draw(st.binary(min_size=1, max_size=8)) + body[at:]


def mutate_params(data: st.DataObject, params: dict[str, str]) -> dict[str, str]:
    """Form or query parameters with one value replaced, one dropped or one added."""
    out = dict(params)
    key = data.draw(st.sampled_from(sorted(out)))
    op = data.draw(st.sampled_from(["replace", "replace", "drop", "add"]))
    if op == "replace":
        out[key] = data.draw(texts)
    elif op == "drop":
        del out[key]
    else:
        out[data.draw(st.text(min_size=1, max_size=12))] = data.draw(texts)
    return out


def check(reply: Reply, what: str) -> None:
    """Below 500; an error answer is a problem document whose status is the answer's."""
    assert reply.status < 500, (what, reply.status, reply.raw[:300])
    if reply.status >= 400 and reply.raw:
        assert reply.headers["Content-Type"].startswith("application/problem+json"), what
        assert isinstance(reply.body, dict), what
        assert reply.body["status"] == reply.status, what


@EXAMPLES
@given(data=st.data())
async def test_mutated_canonical_events(stack: Stack, data: st.DataObject) -> None:
    """Signed canonical bodies (one event, or an acceptance and a receipt)."""
    mid = str(uuid.uuid4())
    events: Any = acceptance(mid)
    if data.draw(st.booleans()):
        events = [events, receipt("DELIVERED", "2026-02-04T06:55:00Z", message_id=mid)]
    body = mutate_bytes(data, orjson.dumps(events))
    check(await stack.post(body, headers=signed_by_hand(stack.secret, body)), repr(body))


def signed_by_hand(secret: str, body: bytes) -> dict[str, str]:
    """Standard Webhooks headers for any bytes (the package's signer takes text only):
    ``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body`` keyed with the decoded secret."""
    msg_id, ts = f"msg_{uuid.uuid4().hex}", str(int(time.time()))
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": ts,
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
        "content-type": "application/json",
    }


@EXAMPLES
@given(data=st.data())
async def test_mutated_twilio_callbacks(stack: Stack, data: st.DataObject) -> None:
    """Form callbacks signed for the public URL, as Twilio signs them."""
    params = mutate_params(data, dict(twilio_params("SM" + uuid.uuid4().hex, "delivered")))
    pairs = list(params.items())
    headers = {
        "X-Twilio-Signature": twilio_signature(PUBLIC + "/webhooks/twilio", pairs),
        "Content-Type": FORM,
    }
    reply = await call(stack, "POST", "/webhooks/twilio", body=twilio_form(pairs), headers=headers)
    check(reply, repr(params))


@EXAMPLES
@given(data=st.data())
async def test_mutated_vonage_dlrs(stack: Stack, data: st.DataObject) -> None:
    """SMS DLRs by GET, signed (HMAC-SHA256) after the mutation."""
    fields = {
        "msisdn": "15550100001",
        "to": "AcmeShop",
        "messageId": "0A" + uuid.uuid4().hex[:14].upper(),
        "status": "delivered",
        "scts": "2501151230",
        "err-code": "0",
        "message-timestamp": "2025-01-15 12:30:05",
    }
    signed = vonage_signed(mutate_params(data, fields), method="sha256")
    reply = await call(stack, "GET", "/webhooks/vonage?" + urlencode(signed))
    check(reply, repr(signed))


@EXAMPLES
@given(data=st.data())
async def test_mutated_vonage_messages_statuses(stack: Stack, data: st.DataObject) -> None:
    """Messages API statuses with a JWT whose payload_hash is the mutated body's."""
    body = mutate_bytes(
        data, messages_status(str(uuid.uuid4()), "delivered", "2025-01-15T12:30:30Z")
    )
    headers = {"Authorization": f"Bearer {vonage_jwt(body)}", "Content-Type": "application/json"}
    reply = await call(stack, "POST", "/webhooks/vonage-messages", body=body, headers=headers)
    check(reply, body.decode(errors="replace"))


@EXAMPLES
@given(data=st.data())
async def test_mutated_infobip_reports(stack: Stack, data: st.DataObject) -> None:
    """Report batches with the right Basic credentials."""
    report = infobip_report("MSG-" + uuid.uuid4().hex, 5, "DELIVERED_TO_HANDSET", "DELIVERED")
    body = mutate_bytes(data, orjson.dumps({"results": [report]}))
    headers = {**basic_header(INFOBIP_USER, INFOBIP_PASSWORD), "Content-Type": "application/json"}
    reply = await call(stack, "POST", "/webhooks/infobip", body=body, headers=headers)
    check(reply, body.decode(errors="replace"))


@EXAMPLES
@given(data=st.data())
async def test_mutated_sinch_reports(stack: Stack, data: st.DataObject) -> None:
    """Recipient delivery reports with the right Basic credentials."""
    report = {
        "type": "recipient_delivery_report_sms",
        "batch_id": "01J" + uuid.uuid4().hex[:23].upper(),
        "recipient": "15550100001",
        "status": "Delivered",
        "code": 0,
        "operator_status_at": "2025-01-15T12:30:00Z",
    }
    body = mutate_bytes(data, orjson.dumps(report))
    headers = {**basic_header(SINCH_USER, SINCH_PASSWORD), "Content-Type": "application/json"}
    reply = await call(stack, "POST", "/webhooks/sinch", body=body, headers=headers)
    check(reply, body.decode(errors="replace"))


@EXAMPLES
@given(data=st.data())
async def test_mutated_smpp_receipts(stack: Stack, data: st.DataObject) -> None:
    """SMPP receipts (Jasmin/Kannel style query) with the right token."""
    number = uuid.uuid4().int % 10**9
    params = {
        "messageId": f"{number:x}",
        "receipt": f"id:{number:010d} sub:001 dlvrd:001 submit date:2501151230 "
        "done date:2501151233 stat:DELIVRD err:000 text:Hi",
    }
    query = {"token": SMPP_TOKEN, **mutate_params(data, params)}
    reply = await call(stack, "GET", "/webhooks/smpp?" + urlencode(query))
    check(reply, repr(query))
