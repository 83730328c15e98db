"""Field reports: provider callbacks shaped as real gateways send them, through the real stack.

HTTP callback -> ingest -> Kafka -> projector -> Redis -> read API, one stack for the module
with every adapter's credentials configured. The rule under test (docs/providers.md,
"Batches and unusable input"): apply what can be applied, keep what cannot (skipped metric
with the reason), answer 2xx unless the request is unauthenticated or unreadable.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode, urlsplit

import orjson
import pytest
from prometheus_client import REGISTRY

from tests.factories import acceptance
from tests.support.providers import (
    INFOBIP_PASSWORD,
    INFOBIP_USER,
    PROVIDER_SETTINGS,
    SINCH_PASSWORD,
    SINCH_USER,
    SMPP_TOKEN,
    basic,
    basic_header,
    new_phone,
    vonage_jwt,
    vonage_signed,
)
from tests.support.stack import Reply, Stack, new_stack

INFOBIP_AUTH = basic_header(INFOBIP_USER, INFOBIP_PASSWORD)
SINCH_AUTH = basic_header(SINCH_USER, SINCH_PASSWORD)
JSON = {"Content-Type": "application/json"}
BOM = b"\xef\xbb\xbf"


@pytest.fixture(scope="module")
async def stack() -> AsyncIterator[Stack]:
    """A stack whose ingest has every adapter's credentials (tests.support.providers), with
    the SMPP adapter's defaults: receipt dates in UTC, ids as the gateway writes them."""
    s = new_stack()
    defaults = ("smpp_timezone", "smpp_receipt_id_base", "smpp_submit_id_base")
    await s.start(**{k: v for k, v in PROVIDER_SETTINGS.items() if k not in defaults})
    yield s
    await s.close()


async def call(
    stack: Stack, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> Reply:
    """Send a raw provider callback to ``path`` (query included) of the stack's ingest."""
    async with stack.http.request(
        method, stack.ingest_url + path, data=body, headers=headers or {}
    ) as resp:
        raw = await resp.read()
        ctype = resp.headers.get("Content-Type", "")
        parsed: Any = orjson.loads(raw) if raw and "json" in ctype else None
        return Reply(resp.status, dict(resp.headers), parsed, raw)


async def accept(stack: Stack, provider: str, provider_id: str, **kwargs: Any) -> str:
    """Post the acceptance of a fresh message; its id."""
    mid = str(uuid.uuid4())
    kwargs.setdefault("at", "2026-08-01T10:00:00Z")
    reply = await stack.post(acceptance(mid, provider=provider, provider_id=provider_id, **kwargs))
    assert reply.status == 202, reply.body
    return mid


def skipped(adapter: str, reason: str) -> float:
    """The skipped-entries counter of an adapter and reason (this process's registry)."""
    labels = {"adapter": adapter, "reason": reason}
    return REGISTRY.get_sample_value("msgstatus_provider_entries_skipped_total", labels) or 0.0


def vonage_id() -> str:
    """An invented Vonage SMS message id (16 hex digits, upper case)."""
    return "0B" + uuid.uuid4().hex[:14].upper()


# --- 1. provider time formats ----------------------------------------------------------------


def failed_dlr(pid: str, stamp: str, phone: str) -> dict[str, str]:
    """A signed Vonage DLR for a failed message, no ``scts``, only ``message-timestamp``."""
    fields = {
        "msisdn": phone.lstrip("+"),
        "to": "AcmeShop",
        "messageId": pid,
        "status": "failed",
        "err-code": "5",
        "api-key": "abcd1234",
        "message-timestamp": stamp,
    }
    return vonage_signed(fields, method="sha256")


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_vonage_message_timestamp_with_a_space_before_the_offset(
    stack: Stack, method: str
) -> None:
    """Vonage's own form ``2026-08-01 10:05:00 +0000`` (no scts): 200, UNDELIVERED at
    10:05:00Z, ``provider.code`` the err-code; by GET (query) and by JSON POST."""
    pid, phone = vonage_id(), "+" + new_phone()
    mid = await accept(stack, "vonage", pid, phone=phone)
    dlr = failed_dlr(pid, "2026-08-01 10:05:00 +0000", phone)
    if method == "GET":
        reply = await call(stack, "GET", "/webhooks/vonage?" + urlencode(dlr))
    else:
        reply = await call(stack, "POST", "/webhooks/vonage", orjson.dumps(dlr), JSON)
    assert reply.status == 200, reply.body
    doc = (await stack.wait_for_status(mid, "UNDELIVERED")).body["message"]
    assert doc["statusChangedAt"] == "2026-08-01T10:05:00Z"
    assert doc["provider"]["code"] == "5"


@pytest.mark.parametrize(
    "stamp",
    [
        "2026-08-01T10:05:00+00:00",
        "2026-08-01T10:05:00Z",
        "2026-08-01 10:05:00",
        "2026-08-01 12:05:00+0200",
        "2026-08-01 10:05:00  0000",  # the '+' of an unencoded query string became a space
    ],
)
async def test_vonage_time_siblings(stack: Stack, stamp: str) -> None:
    """Other forms gateways write: ``T`` or space, offset with or without colon, ``Z`` or none."""
    pid, phone = vonage_id(), "+" + new_phone()
    mid = await accept(stack, "vonage", pid, phone=phone)
    query = urlencode(failed_dlr(pid, stamp, phone))
    reply = await call(stack, "GET", "/webhooks/vonage?" + query)
    assert reply.status == 200, reply.body
    doc = (await stack.wait_for_status(mid, "UNDELIVERED")).body["message"]
    assert doc["statusChangedAt"] == "2026-08-01T10:05:00Z"


async def test_unreadable_time_falls_back_to_the_receive_time(stack: Stack) -> None:
    """A time in no known form never refuses the receipt: applied at the receive time."""
    pid, phone = vonage_id(), "+" + new_phone()
    mid = await accept(stack, "vonage", pid, phone=phone)
    before = int(time.time())
    reply = await call(
        stack, "GET", "/webhooks/vonage?" + urlencode(failed_dlr(pid, "yesterday-ish", phone))
    )
    assert reply.status == 200, reply.body
    doc = (await stack.wait_for_status(mid, "UNDELIVERED")).body["message"]
    changed = doc["statusChangedAt"]
    assert changed >= time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(before - 1))


@pytest.mark.parametrize(
    ("done", "expected"),
    [
        ("2608011005", "2026-08-01T10:05:00Z"),
        ("260801100507", "2026-08-01T10:05:07Z"),
        ("20260801100507", "2026-08-01T10:05:07Z"),
        ("2026-08-01 10:05:07", "2026-08-01T10:05:07Z"),
    ],
)
async def test_smpp_and_jasmin_dates_of_2_and_4_digit_years(
    stack: Stack, done: str, expected: str
) -> None:
    """SMPP ``done date`` and Jasmin's ``donedate`` with 10, 12 and 14 digits (UTC here)."""
    if done.isdigit():  # a receipt text's fields are space-separated: digits only there
        mid = str(uuid.uuid4())
        await stack.post(
            acceptance(mid, provider="smpp", provider_id=uuid.uuid4().hex, at=expected)
        )
        receipt = f"id:77 sub:001 dlvrd:001 submit date:{done} done date:{done} stat:DELIVRD"
        query = urlencode({"token": SMPP_TOKEN, "messageId": mid, "receipt": receipt})
        assert (await call(stack, "GET", "/webhooks/smpp?" + query)).status == 200
        doc = (await stack.wait_for_status(mid, "DELIVERED")).body["message"]
        assert doc["statusChangedAt"] == expected
    jasmin = str(uuid.uuid4())
    mid2 = await accept(stack, "smpp", jasmin, at=expected)
    query = urlencode(
        {
            "token": SMPP_TOKEN,
            "id": jasmin,
            "message_status": "UNDELIV",
            "level": "2",
            "donedate": done,
            "err": "011",
        }
    )
    assert (await call(stack, "GET", "/webhooks/smpp?" + query)).status == 200
    doc = (await stack.wait_for_status(mid2, "UNDELIVERED")).body["message"]
    assert doc["statusChangedAt"] == expected


# --- 2. byte-order mark ------------------------------------------------------------------------


def infobip_report(pid: str, **extra: Any) -> dict[str, Any]:
    """One Infobip DELIVERED_TO_HANDSET report."""
    return {
        "messageId": pid,
        "to": "15550100001",
        "sentAt": "2026-08-01T10:00:01.000+0000",
        "doneAt": "2026-08-01T10:00:07.000+0000",
        "status": {"groupName": "DELIVERED", "id": 5, "name": "DELIVERED_TO_HANDSET"},
        "error": {"id": 0, "name": "NO_ERROR"},
        **extra,
    }


async def test_bom_before_json_is_applied_for_every_json_adapter(stack: Stack) -> None:
    """Infobip, Sinch and Vonage Messages bodies starting with EF BB BF, authenticated: applied
    (the Vonage JWT's payload_hash covers the bytes as sent, BOM included)."""
    pid = "MSG-" + uuid.uuid4().hex
    m_infobip = await accept(stack, "infobip", pid)
    body = BOM + orjson.dumps({"results": [infobip_report(pid)]})
    reply = await call(stack, "POST", "/webhooks/infobip", body, {**INFOBIP_AUTH, **JSON})
    assert (reply.status, reply.body["accepted"]) == (200, 1), reply.body

    batch, phone = uuid.uuid4().hex[:26].upper(), "+" + new_phone()
    m_sinch = await accept(stack, "sinch", batch, phone=phone)
    sinch = {
        "type": "recipient_delivery_report_sms",
        "batch_id": batch,
        "recipient": phone.lstrip("+"),
        "status": "Delivered",
        "code": 0,
        "at": "2026-08-01T10:00:07.000Z",
    }
    reply = await call(stack, "POST", "/webhooks/sinch", BOM + orjson.dumps(sinch), SINCH_AUTH)
    assert reply.status == 200, reply.body

    muuid = str(uuid.uuid4())
    m_vonage = await accept(stack, "vonage", muuid, channel="RCS")
    status = {"message_uuid": muuid, "status": "read", "timestamp": "2026-08-01T10:00:09Z"}
    raw = BOM + orjson.dumps({**status, "channel": "rcs", "to": "15550100001"})
    headers = {"Authorization": f"Bearer {vonage_jwt(raw)}", **JSON}
    reply = await call(stack, "POST", "/webhooks/vonage-messages", raw, headers)
    assert reply.status == 200, reply.body

    await stack.wait_for_status(m_infobip, "DELIVERED")
    await stack.wait_for_status(m_sinch, "DELIVERED")
    await stack.wait_for_status(m_vonage, "READ")


async def test_bom_before_a_canonical_body(stack: Stack) -> None:
    """The canonical endpoint: signature over the bytes as sent, then one BOM dropped."""
    mid = str(uuid.uuid4())
    reply = await stack.post(BOM + orjson.dumps(acceptance(mid, at="2026-08-01T10:00:00Z")))
    assert reply.status == 202, reply.body
    await stack.wait_for_status(mid, "PROVIDER_ACCEPTANCE")


# --- 5. Kannel NACK and unknown types -------------------------------------------------------------


async def test_kannel_nack_keeps_the_smpp_error(stack: Stack) -> None:
    """``type=16&receipt=NACK/0x0000000b/Invalid Destination Address``: REJECTED, code
    ``0x0000000b`` as Kannel writes it, the text in ``provider.message``."""
    mid = await accept(stack, "smpp", uuid.uuid4().hex)
    path = (
        f"/webhooks/smpp?token={SMPP_TOKEN}&messageId={mid}&type=16"
        "&receipt=NACK/0x0000000b/Invalid%20Destination%20Address&to=%2B15550100001"
    )
    reply = await call(stack, "GET", path)
    assert reply.status == 200
    doc = (await stack.wait_for_status(mid, "REJECTED")).body["message"]
    assert doc["provider"]["code"] == "0x0000000b"
    assert doc["provider"]["message"] == "Invalid Destination Address"


async def test_kannel_nack_without_type_and_ack_sibling(stack: Stack) -> None:
    """A NACK text without ``type`` is REJECTED too; an ``ACK/`` with type 8 is SENT."""
    mid = await accept(stack, "smpp", uuid.uuid4().hex)
    await call(
        stack, "GET", f"/webhooks/smpp?token={SMPP_TOKEN}&messageId={mid}&type=8&receipt=ACK/"
    )
    await stack.wait_for_status(mid, "SENT")
    mid2 = await accept(stack, "smpp", uuid.uuid4().hex)
    path = f"/webhooks/smpp?token={SMPP_TOKEN}&messageId={mid2}&receipt=NACK/0x00000045/Submit%20failed"
    assert (await call(stack, "GET", path)).status == 200
    doc = (await stack.wait_for_status(mid2, "REJECTED")).body["message"]
    assert doc["provider"]["code"] == "0x00000045"


@pytest.mark.parametrize("kind", ["32", "3", "x", ""])
async def test_kannel_type_outside_the_set_is_acknowledged_and_counted(
    stack: Stack, kind: str
) -> None:
    """A ``type`` outside 1/2/4/8/16 (or none at all) never changes the status, never a 5xx:
    200 ``ACK/Jasmin``, counted as skipped."""
    mid = await accept(stack, "smpp", uuid.uuid4().hex)
    before = skipped("smpp", "unknown") + skipped("smpp", "no status in the DLR")
    reply = await call(
        stack, "GET", f"/webhooks/smpp?token={SMPP_TOKEN}&messageId={mid}&type={kind}"
    )
    assert (reply.status, reply.raw) == (200, b"ACK/Jasmin")
    after = skipped("smpp", "unknown") + skipped("smpp", "no status in the DLR")
    assert after == before + 1
    await stack.wait_for_status(mid, "PROVIDER_ACCEPTANCE")  # the DLR published no event


# --- 6. one unusable entry in an array -------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_vonage_receipt_with_an_unreadable_recipient_is_applied(
    stack: Stack, method: str
) -> None:
    """A receipt whose optional recipient is no number is applied by its provider id (the
    recipient only helps route reused ids): 200, never a 400 that would lose the status."""
    pid = vonage_id()
    mid = await accept(stack, "vonage", pid, phone="+" + new_phone())
    dlr = dict(failed_dlr(pid, "2026-08-01 10:05:00 +0000", "+15550100001"))
    dlr["msisdn"] = "not-a-number"
    dlr = vonage_signed({k: v for k, v in dlr.items() if k != "sig"}, method="sha256")
    if method == "GET":
        reply = await call(stack, "GET", "/webhooks/vonage?" + urlencode(dlr))
    else:
        reply = await call(stack, "POST", "/webhooks/vonage", orjson.dumps(dlr), JSON)
    assert reply.status == 200, reply.body
    await stack.wait_for_status(mid, "UNDELIVERED")


async def test_infobip_batch_with_one_unusable_report(stack: Stack) -> None:
    """Two good reports around one without ``messageId`` and one that is no object: 200,
    both good ones applied, the bad ones counted as skipped with their index."""
    pids = ["MSG-" + uuid.uuid4().hex for _ in range(2)]
    mids = [await accept(stack, "infobip", pid) for pid in pids]
    bad = infobip_report("x")
    del bad["messageId"]
    before = skipped("infobip", "invalid entry")
    body = orjson.dumps({"results": [infobip_report(pids[0]), bad, 7, infobip_report(pids[1])]})
    reply = await call(stack, "POST", "/webhooks/infobip", body, INFOBIP_AUTH)
    assert (reply.status, reply.body["accepted"]) == (200, 2), reply.body
    assert skipped("infobip", "invalid entry") == before + 2
    for mid in mids:
        await stack.wait_for_status(mid, "DELIVERED")


async def test_sinch_batch_report_with_one_bad_recipient_and_entry(stack: Stack) -> None:
    """A Sinch batch report: a recipient that is no number and a status entry without a
    status are skipped; the other recipients are applied."""
    batch = uuid.uuid4().hex[:26].upper()
    phones = ["+" + new_phone() for _ in range(2)]
    mids = [await accept(stack, "sinch", batch, phone=p) for p in phones]
    report = {
        "type": "delivery_report_sms",
        "batch_id": batch,
        "statuses": [
            {
                "code": 0,
                "status": "Delivered",
                "count": 3,
                "recipients": [phones[0].lstrip("+"), "not-a-number", phones[1].lstrip("+")],
            },
            {"code": 0, "count": 1, "recipients": ["15550100009"]},
        ],
    }
    before = skipped("sinch", "invalid entry")
    reply = await call(stack, "POST", "/webhooks/sinch", orjson.dumps(report), SINCH_AUTH)
    assert (reply.status, reply.body["accepted"]) == (200, 2), reply.body
    assert skipped("sinch", "invalid entry") == before + 2
    for mid in mids:
        await stack.wait_for_status(mid, "DELIVERED")


async def test_vonage_messages_batched_statuses_with_one_bad_entry(stack: Stack) -> None:
    """Vonage Messages statuses batched in a JSON array, one without ``status``: the rest apply."""
    uuids = [str(uuid.uuid4()) for _ in range(2)]
    mids = [await accept(stack, "vonage", u) for u in uuids]
    entries = [
        {"message_uuid": uuids[0], "status": "delivered", "timestamp": "2026-08-01T10:00:05Z"},
        {"message_uuid": str(uuid.uuid4()), "timestamp": "2026-08-01T10:00:05Z"},
        {"message_uuid": uuids[1], "status": "delivered", "timestamp": "2026-08-01T10:00:06Z"},
    ]
    raw = orjson.dumps(entries)
    headers = {"Authorization": f"Bearer {vonage_jwt(raw)}", **JSON}
    reply = await call(stack, "POST", "/webhooks/vonage-messages", raw, headers)
    assert (reply.status, reply.body["accepted"]) == (200, 2), reply.body
    for mid in mids:
        await stack.wait_for_status(mid, "DELIVERED")


async def test_canonical_batch_stays_all_or_nothing(stack: Stack) -> None:
    """``/webhooks/events`` keeps refusing a batch with one bad event (400 naming ``[1]``):
    its sender is told exactly which one, and nothing of it is published."""
    mid = str(uuid.uuid4())
    good = acceptance(mid, at="2026-08-01T10:00:00Z")
    reply = await stack.post([good, {"status": "DELIVERED"}])
    assert reply.status == 400
    assert all(e["field"].startswith("[1]") for e in reply.body["errors"])
    await asyncio.sleep(0.3)
    assert (await stack.get(f"/api/messagestatus/{mid}")).status == 404


# --- 7. implausible times ----------------------------------------------------------------------------


async def test_acceptance_in_the_year_3000_is_refused(stack: Stack) -> None:
    """``occurredAt`` beyond the clock skew: 400 naming ``occurredAt``; within it: accepted."""
    mid = str(uuid.uuid4())
    reply = await stack.post(acceptance(mid, at="3000-01-01T00:00:00Z"))
    assert reply.status == 400
    assert [e["field"] for e in reply.body["errors"]] == ["occurredAt"]
    batch = [
        acceptance(str(uuid.uuid4()), at="2026-08-01T10:00:00Z"),
        acceptance(mid, at="2999-12-31T00:00:00Z"),
    ]
    reply = await stack.post(batch)
    assert [e["field"] for e in reply.body["errors"]] == ["[1].occurredAt"]
    soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60))
    assert (await stack.post(acceptance(mid, at=soon))).status == 202


async def test_provider_receipt_in_the_future_takes_the_receive_time(stack: Stack) -> None:
    """A provider's receipt dated in 3000 is not refused (status kept): receive time instead."""
    pid = "MSG-" + uuid.uuid4().hex
    mid = await accept(stack, "infobip", pid)
    body = orjson.dumps({"results": [infobip_report(pid, doneAt="3000-01-01T00:00:00.000+0000")]})
    reply = await call(stack, "POST", "/webhooks/infobip", body, INFOBIP_AUTH)
    assert reply.status == 200
    doc = (await stack.wait_for_status(mid, "DELIVERED")).body["message"]
    assert doc["statusChangedAt"] < "2100"


# --- 4. credentials before the body ------------------------------------------------------------

SLOW_BODY = 4 * 1024 * 1024


async def first_answer_to_a_slow_upload(
    stack: Stack, path: str, headers: dict[str, str], wait_s: float = 10
) -> str:
    """Announce a 4 MiB body, send 64 KiB of it and stall: the status line the server sends
    before the rest arrives (within ``wait_s``), or ``TimeoutError``."""
    url = urlsplit(stack.ingest_url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    try:
        head = f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\n"
        head += f"Content-Length: {SLOW_BODY}\r\nContent-Type: application/json\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        writer.write(head.encode() + b"{" + b" " * 65535)
        await writer.drain()
        async with asyncio.timeout(wait_s):
            line = await reader.readline()
        return line.decode().strip()
    finally:
        writer.close()


WRONG_BASIC = {"Authorization": basic("infobip-user", "wrong")}


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/webhooks/infobip", WRONG_BASIC, 401),
        ("/webhooks/infobip", {}, 401),
        ("/webhooks/sinch", {"Authorization": basic("sinch-user", "wrong")}, 401),
        ("/webhooks/smpp?token=wrong", {}, 401),
        ("/webhooks/smpp", {}, 401),
        ("/webhooks/twilio", {}, 401),
        ("/webhooks/twilio", {"X-Twilio-Signature": "not base64!"}, 401),
        ("/webhooks/vonage-messages", {"Authorization": "Bearer not.a.jwt"}, 401),
        ("/webhooks/vonage-messages", {}, 503),
        ("/webhooks/events", {}, 401),
        (
            "/webhooks/events",
            {"webhook-id": "m1", "webhook-timestamp": "1", "webhook-signature": "v1,x"},
            401,
        ),
    ],
)
async def test_unauthenticated_upload_is_answered_before_its_body(
    stack: Stack, path: str, headers: dict[str, str], status: int
) -> None:
    """A 4 MiB body sent slowly with wrong or missing credentials: answered at once from the
    headers or query alone (signatures over the body: a missing or malformed header)."""
    line = await first_answer_to_a_slow_upload(stack, path, headers)
    assert line.startswith(f"HTTP/1.1 {status} "), line


async def test_authenticated_slow_upload_is_read(stack: Stack) -> None:
    """The right credentials: the body is read (no early answer while it is incomplete)."""
    with pytest.raises(TimeoutError):
        await first_answer_to_a_slow_upload(stack, "/webhooks/infobip", INFOBIP_AUTH, 1.5)
