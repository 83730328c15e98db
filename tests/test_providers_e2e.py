"""Provider adapters end to end: HTTP callback -> ingest -> Kafka -> projector -> Redis -> read API.

One stack for the module, with every provider's credentials configured as a real deployment
would be (Twilio behind a proxy URL with a path prefix, Vonage HMAC-SHA256, SMPP ids decimal
in receipts and hex on submit, receipt dates in Europe/Berlin). Every test uses fresh ids.
"""

from __future__ import annotations

import hashlib
import io
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest

from ingest.app import create_app as create_ingest
from ingest.settings import IngestSettings
from tests.factories import acceptance
from tests.support.kafka_util import read_all
from tests.support.providers import (
    INFOBIP_PASSWORD,
    INFOBIP_USER,
    PROVIDER_SETTINGS,
    PUBLIC,
    SINCH_PASSWORD,
    SINCH_USER,
    SMPP_TOKEN,
    basic,
    basic_header,
    new_phone,
    new_sid,
    twilio_form,
    twilio_signature,
    vonage_jwt,
    vonage_signed,
)
from tests.support.stack import Reply, Stack, new_stack

INFOBIP_AUTH = basic_header(INFOBIP_USER, INFOBIP_PASSWORD)
SINCH_AUTH = basic_header(SINCH_USER, SINCH_PASSWORD)
FORM = "application/x-www-form-urlencoded"


@pytest.fixture(scope="module")
async def stack() -> AsyncIterator[Stack]:
    """A stack whose ingest has every adapter's credentials (see the module docstring)."""
    s = new_stack()
    await s.start(**PROVIDER_SETTINGS)
    yield s
    await s.close()


async def call(
    stack: Stack,
    method: str,
    path: str,
    *,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    base: str | None = None,
) -> Reply:
    """Send a raw provider callback to ``path`` (query included) of the stack's ingest."""
    url = (base or stack.ingest_url) + path
    data: bytes | io.BytesIO = io.BytesIO(body) if len(body) > 1_000_000 else body  # aiohttp warns
    async with stack.http.request(method, url, data=data, headers=headers or {}) as resp:
        raw = await resp.read()
        parsed: Any = (
            orjson.loads(raw) if raw and "json" in resp.headers.get("Content-Type", "") else None
        )
        return Reply(resp.status, dict(resp.headers), parsed, raw)


async def accept(stack: Stack, provider: str, provider_id: str, **kwargs: Any) -> str:
    """Post the acceptance of a fresh message through the canonical endpoint; its id."""
    mid = str(uuid.uuid4())
    kwargs.setdefault("at", "2025-01-15T12:29:00Z")  # before the providers' report times
    reply = await stack.post(acceptance(mid, provider=provider, provider_id=provider_id, **kwargs))
    assert reply.status == 202, reply.body
    return mid


# --- Twilio ----------------------------------------------------------------------------


def twilio_params(sid: str, status: str, code: str = "") -> list[tuple[str, str]]:
    """A Twilio status callback's parameters (ErrorCode blank unless given)."""
    return [
        ("AccountSid", "AC00000000000000000000000000000001"),
        ("From", "+15550100002"),
        ("To", "+15550100001"),
        ("MessageSid", sid),
        ("SmsSid", sid),
        ("MessageStatus", status),
        ("SmsStatus", status),
        ("ErrorCode", code),
    ]


async def twilio(stack: Stack, sid: str, status: str, code: str = "") -> Reply:
    """POST a Twilio callback signed for the public URL the proxy exposes."""
    pairs = twilio_params(sid, status, code)
    signature = twilio_signature(PUBLIC + "/webhooks/twilio", pairs)
    headers = {"X-Twilio-Signature": signature, "Content-Type": FORM}
    return await call(stack, "POST", "/webhooks/twilio", body=twilio_form(pairs), headers=headers)


@pytest.mark.parametrize(
    ("word", "code", "expected", "channel"),
    [
        ("sent", "", "SENT", "SMS"),
        ("delivered", "", "DELIVERED", "SMS"),
        ("undelivered", "30003", "UNDELIVERED", "SMS"),
        ("failed", "30008", "REJECTED", "SMS"),
        ("canceled", "", "REJECTED", "SMS"),
        ("read", "", "READ", "RCS"),
    ],
)
async def test_twilio_status_reaches_the_read_api(
    stack: Stack, word: str, code: str, expected: str, channel: str
) -> None:
    """Each Twilio status with an event becomes the message's status, via the proxy's URL."""
    sid = new_sid()
    mid = await accept(stack, "Twilio", sid, channel=channel)
    reply = await twilio(stack, sid, word, code)
    assert reply.status == 200, reply.body
    doc = (await stack.wait_for_status(mid, expected)).body["message"]
    assert doc["provider"] == {"name": "Twilio", "id": sid, "status": word, "code": code or "0"}


@pytest.mark.parametrize("word", ["queued", "accepted", "sending", "received"])
async def test_twilio_states_without_an_event_are_acknowledged(stack: Stack, word: str) -> None:
    """States before hand-off get 200 with no event: the message stays PROVIDER_ACCEPTANCE."""
    sid = new_sid()
    mid = await accept(stack, "twilio", sid)
    reply = await twilio(stack, sid, word)
    assert (reply.status, reply.body["accepted"]) == (200, 0)
    await twilio(stack, sid, "sent")
    history = await stack.wait_for_history(mid, 2)
    assert [e["status"] for e in history.body["events"]] == ["PROVIDER_ACCEPTANCE", "SENT"]


async def test_twilio_tampered_callback_is_401_and_never_reaches_kafka(stack: Stack) -> None:
    """A callback changed after signing gets 401 and no record of it is in the topic."""
    sid = new_sid()
    pairs = twilio_params(sid, "undelivered", "30003")
    signature = twilio_signature(PUBLIC + "/webhooks/twilio", pairs)
    tampered = twilio_form(twilio_params(sid, "delivered"))
    headers = {"X-Twilio-Signature": signature, "Content-Type": FORM}
    reply = await call(stack, "POST", "/webhooks/twilio", body=tampered, headers=headers)
    assert reply.status == 401
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    unsigned = await call(
        stack, "POST", "/webhooks/twilio", body=tampered, headers={"Content-Type": FORM}
    )
    assert unsigned.status == 401
    records = await read_all(stack.kafka, stack.topic, timeout_ms=500)
    assert not [r for r in records if r.get("provider", {}).get("id") == sid]


async def test_twilio_url_seen_by_ingest_is_not_the_signed_one(stack: Stack) -> None:
    """Signed for the ingest's own address instead of the public URL: refused (401)."""
    pairs = twilio_params(new_sid(), "sent")
    signature = twilio_signature(stack.ingest_url + "/webhooks/twilio", pairs)
    headers = {"X-Twilio-Signature": signature, "Content-Type": FORM}
    reply = await call(stack, "POST", "/webhooks/twilio", body=twilio_form(pairs), headers=headers)
    assert reply.status == 401


async def test_twilio_json_body_with_body_sha256(stack: Stack) -> None:
    """The JSON variant verifies by bodySHA256 on the public URL and updates the message."""
    sid = new_sid()
    mid = await accept(stack, "twilio", sid)
    body = orjson.dumps({"MessageSid": sid, "MessageStatus": "delivered", "To": "+15550100001"})
    path = f"/webhooks/twilio?bodySHA256={hashlib.sha256(body).hexdigest()}"
    signature = twilio_signature(PUBLIC + path, [])
    headers = {"X-Twilio-Signature": signature, "Content-Type": "application/json"}
    assert (await call(stack, "POST", path, body=body, headers=headers)).status == 200
    await stack.wait_for_status(mid, "DELIVERED")


async def test_twilio_receipt_before_acceptance_then_out_of_order(stack: Stack) -> None:
    """DELIVERED before the acceptance is parked (the message is 404 once the projector has
    applied the receipt), applied on acceptance; a late SENT retried twice is one event id,
    one history entry, and never moves the status back."""
    sid, mid = new_sid(), str(uuid.uuid4())
    assert (await twilio(stack, sid, "delivered")).status == 200
    await stack.wait_caught_up()  # the receipt is in the projection, parked
    assert (await stack.get(f"/api/messagestatus/{mid}")).status == 404
    await stack.post(acceptance(mid, provider="twilio", provider_id=sid, at="2025-01-15T12:29:00Z"))
    await stack.wait_for_status(mid, "DELIVERED")
    first, again = await twilio(stack, sid, "sent"), await twilio(stack, sid, "sent")
    assert first.body["eventIds"] == again.body["eventIds"]
    await stack.wait_for_history(mid, 3)
    await stack.wait_caught_up()
    history = await stack.get(f"/api/messagestatus/{mid}/history")
    # Twilio sends no time: both receipts are stamped with their receive time, in that order.
    assert [e["status"] for e in history.body["events"]] == [
        "PROVIDER_ACCEPTANCE",
        "DELIVERED",
        "SENT",
    ]
    assert (await stack.get(f"/api/messagestatus/{mid}")).body["message"]["status"] == "DELIVERED"


# --- Vonage SMS API ------------------------------------------------------------------------


def vonage_id() -> str:
    """An invented Vonage SMS message id (16 hex digits, upper case)."""
    return "0A" + uuid.uuid4().hex[:14].upper()


def dlr(message_id: str, status: str, scts: str = "2501151230", **extra: str) -> dict[str, str]:
    """A Vonage DLR's fields, signed with HMAC-SHA256 as the stack is configured."""
    fields = {
        "msisdn": new_phone(),
        "to": "AcmeShop",
        "network-code": "310260",
        "messageId": message_id,
        "price": "0.00750000",
        "status": status,
        "scts": scts,
        "err-code": "0",
        "api-key": "abcd1234",
        "message-timestamp": "2025-01-15 12:30:05",
        **extra,
    }
    return vonage_signed(fields, method="sha256")


async def test_vonage_dlrs_by_get_and_json_post(stack: Stack) -> None:
    """A signed GET DLR (accepted) then a signed JSON POST DLR (delivered): DELIVERED at scts."""
    pid = vonage_id()
    mid = await accept(stack, "vonage", pid.lower())
    first = await call(
        stack, "GET", "/webhooks/vonage?" + urlencode(dlr(pid, "accepted", "2501151230"))
    )
    assert first.status == 200, first.body
    body = orjson.dumps(dlr(pid, "delivered", "2501151231"))
    second = await call(
        stack, "POST", "/webhooks/vonage", body=body, headers={"Content-Type": "application/json"}
    )
    assert second.status == 200, second.body
    doc = (await stack.wait_for_status(mid, "DELIVERED")).body["message"]
    assert doc["statusChangedAt"] == "2025-01-15T12:31:00Z"
    assert doc["provider"]["id"] == pid  # the acceptance's lower-case id was normalised


async def test_vonage_parts_of_a_long_sms_correlate_by_client_ref_only(stack: Stack) -> None:
    """Both parts' DLRs reach the message through client-ref; a part's id never touches
    another message, and a part without client-ref stays unmatched."""
    part1, part2, other_pid = vonage_id(), vonage_id(), vonage_id()
    mid = await accept(stack, "vonage", part1)
    other = await accept(stack, "vonage", other_pid)
    for pid, scts in ((part1, "2501151231"), (part2, "2501151232")):
        reply = await call(
            stack,
            "GET",
            "/webhooks/vonage?" + urlencode(dlr(pid, "delivered", scts, **{"client-ref": mid})),
        )
        assert reply.status == 200
    await call(stack, "GET", "/webhooks/vonage?" + urlencode(dlr(part2, "failed", "2501151233")))
    history = await stack.wait_for_history(mid, 3)
    assert [e["status"] for e in history.body["events"]] == [
        "PROVIDER_ACCEPTANCE",
        "DELIVERED",
        "DELIVERED",
    ]
    assert (await stack.get(f"/api/messagestatus/{other}")).body["message"][
        "status"
    ] == "PROVIDER_ACCEPTANCE"


async def test_vonage_retried_dlr_is_one_history_entry(stack: Stack) -> None:
    """A DLR retried with a new timestamp and sig is kept once in the history."""
    pid = vonage_id()
    mid = await accept(stack, "vonage", pid)
    for _ in range(2):
        assert (
            await call(stack, "GET", "/webhooks/vonage?" + urlencode(dlr(pid, "buffered")))
        ).status == 200
    await call(stack, "GET", "/webhooks/vonage?" + urlencode(dlr(pid, "delivered", "2501151240")))
    history = await stack.wait_for_history(mid, 3)
    assert [e["status"] for e in history.body["events"]] == [
        "PROVIDER_ACCEPTANCE",
        "SENT",
        "DELIVERED",
    ]


async def test_vonage_unsigned_dlr_is_refused(stack: Stack) -> None:
    """With a signature secret configured, a DLR without sig gets 401."""
    fields = dlr(vonage_id(), "delivered")
    del fields["sig"]
    assert (await call(stack, "GET", "/webhooks/vonage?" + urlencode(fields))).status == 401


# --- Vonage Messages API -------------------------------------------------------------------


def messages_status(message_uuid: str, status: str, at: str, **extra: Any) -> bytes:
    """A Messages API status callback body (RCS)."""
    body = {"message_uuid": message_uuid, "to": "15550100001", "from": "AcmeBrand", "timestamp": at}
    return orjson.dumps({**body, "status": status, "channel": "rcs", **extra})


async def test_vonage_messages_rcs_read(stack: Stack) -> None:
    """submitted, delivered and read (JWT-signed) make an RCS message READ at read time."""
    muuid = str(uuid.uuid4())
    mid = await accept(stack, "vonage", muuid, channel="RCS")
    for word, at in (
        ("read", "2025-01-15T12:31:02Z"),
        ("submitted", "2025-01-15T12:30:00Z"),
        ("delivered", "2025-01-15T12:30:30Z"),
    ):
        body = messages_status(muuid, word, at)
        headers = {
            "Authorization": f"Bearer {vonage_jwt(body)}",
            "Content-Type": "application/json",
        }
        assert (
            await call(stack, "POST", "/webhooks/vonage-messages", body=body, headers=headers)
        ).status == 200
    doc = (await stack.wait_for_status(mid, "READ")).body["message"]
    assert doc["statusChangedAt"] == "2025-01-15T12:31:02Z"
    history = await stack.wait_for_history(mid, 4)
    assert [e["status"] for e in history.body["events"]] == [
        "PROVIDER_ACCEPTANCE",
        "SENT",
        "DELIVERED",
        "READ",
    ]


async def test_vonage_messages_unsigned_is_503_and_tampered_is_401(stack: Stack) -> None:
    """No JWT: 503 with Retry-After (Vonage retries signed); a tampered body: 401."""
    body = messages_status(str(uuid.uuid4()), "rejected", "2025-01-15T12:31:02Z")
    unsigned = await call(
        stack,
        "POST",
        "/webhooks/vonage-messages",
        body=body,
        headers={"Content-Type": "application/json"},
    )
    assert unsigned.status == 503
    assert unsigned.headers["Retry-After"]
    token = vonage_jwt(body)
    tampered = body.replace(b"rejected", b"delivered")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    assert (
        await call(stack, "POST", "/webhooks/vonage-messages", body=tampered, headers=headers)
    ).status == 401


# --- Infobip -----------------------------------------------------------------------------

INFOBIP_STATUSES = [
    (26, "PENDING_ACCEPTED", "PENDING", "PROVIDER_ACCEPTANCE"),
    (7, "PENDING_ENROUTE", "PENDING", "SENT"),
    (3, "PENDING_WAITING_DELIVERY", "PENDING", "SENT"),
    (2, "DELIVERED_TO_OPERATOR", "DELIVERED", "SENT"),
    (5, "DELIVERED_TO_HANDSET", "DELIVERED", "DELIVERED"),
    (4, "UNDELIVERABLE_REJECTED_OPERATOR", "UNDELIVERABLE", "UNDELIVERED"),
    (9, "UNDELIVERABLE_NOT_DELIVERED", "UNDELIVERABLE", "UNDELIVERED"),
    (31, "UNDELIVERABLE_NOT_SENT", "UNDELIVERABLE", "REJECTED"),
    (15, "EXPIRED_EXPIRED", "EXPIRED", "UNDELIVERED"),
    (29, "EXPIRED_DLR_UNKNOWN", "EXPIRED", "SENT"),
    (6, "REJECTED_NETWORK", "REJECTED", "REJECTED"),
]


def infobip_report(
    message_id: str, status_id: int, name: str, group: str, **extra: Any
) -> dict[str, Any]:
    """One Infobip report (v1/v2 field names), as complete as Infobip sends it (~600 bytes)."""
    group_ids = {"PENDING": 1, "UNDELIVERABLE": 2, "DELIVERED": 3, "EXPIRED": 4, "REJECTED": 5}
    return {
        "bulkId": "BULK-" + message_id[-12:],
        "messageId": message_id,
        "to": "15550100001",
        "from": "AcmeShop",
        "sentAt": "2025-01-15T12:30:00.000+0000",
        "doneAt": "2025-01-15T12:30:07.000+0000",
        "smsCount": 1,
        "mccMnc": "310260",
        "price": {"pricePerMessage": 0.01, "currency": "EUR"},
        "status": {
            "groupId": group_ids[group],
            "groupName": group,
            "id": status_id,
            "name": name,
            "description": "Message delivered to handset",
            "action": None,
        },
        "error": {
            "groupId": 0,
            "groupName": "OK",
            "id": 0,
            "name": "NO_ERROR",
            "description": "No Error",
            "permanent": False,
        },
        "entityId": "promotional-traffic-entity",
        "applicationId": "marketing-automation-application",
        **extra,
    }


async def test_infobip_batch_with_every_status(stack: Stack) -> None:
    """One batch of reports, one per status of the table, each reaches its own message."""
    accepted = []
    for status_id, name, group, expected in INFOBIP_STATUSES:
        pid = "MSG-" + uuid.uuid4().hex
        accepted.append(
            (
                await accept(stack, "infobip", pid),
                infobip_report(pid, status_id, name, group),
                expected,
            )
        )
    body = orjson.dumps({"results": [r for _, r, _ in accepted]})
    reply = await call(stack, "POST", "/webhooks/infobip", body=body, headers=INFOBIP_AUTH)
    assert (reply.status, reply.body["accepted"]) == (200, len(INFOBIP_STATUSES) - 1)
    for mid, _report, expected in accepted:
        await stack.wait_for_status(mid, expected)


async def test_infobip_report_before_acceptance_and_retried_batch(stack: Stack) -> None:
    """A report naming our message by callbackData beats the acceptance: 404 until it comes,
    then DELIVERED; the same batch retried is one history entry."""
    mid, pid = str(uuid.uuid4()), "MSG-" + uuid.uuid4().hex
    item = infobip_report(pid, 5, "DELIVERED_TO_HANDSET", "DELIVERED", callbackData=mid)
    body = orjson.dumps({"results": [item]})
    first = await call(stack, "POST", "/webhooks/infobip", body=body, headers=INFOBIP_AUTH)
    await stack.wait_caught_up()  # the report is in the projection, waiting for its message
    assert (await stack.get(f"/api/messagestatus/{mid}")).status == 404
    await stack.post(
        acceptance(mid, provider="infobip", provider_id=pid, at="2025-01-15T12:29:00Z")
    )
    await stack.wait_for_status(mid, "DELIVERED")
    again = await call(stack, "POST", "/webhooks/infobip", body=body, headers=INFOBIP_AUTH)
    assert first.body["eventIds"] == again.body["eventIds"]
    marker = infobip_report(
        pid, 2, "DELIVERED_TO_OPERATOR", "DELIVERED", doneAt="2025-01-15T12:30:01.000+0000"
    )
    await call(
        stack,
        "POST",
        "/webhooks/infobip",
        body=orjson.dumps({"results": [marker]}),
        headers=INFOBIP_AUTH,
    )
    await stack.wait_for_history(mid, 3)
    await stack.wait_caught_up()
    history = await stack.get(f"/api/messagestatus/{mid}/history")
    assert [e["status"] for e in history.body["events"]] == [
        "PROVIDER_ACCEPTANCE",
        "SENT",
        "DELIVERED",
    ]


async def test_infobip_five_thousand_reports_in_one_request(stack: Stack) -> None:
    """5,000 reports (~3 MB) are accepted in one request, one record each, within the deadline."""
    mids = [str(uuid.uuid4()) for _ in range(5000)]
    for start in range(0, 5000, 1000):
        batch = [
            acceptance(m, provider="infobip", provider_id=f"MSG-{m}")
            for m in mids[start : start + 1000]
        ]
        assert (await stack.post(batch)).status == 202
    results = [
        infobip_report(f"MSG-{m}", 5, "DELIVERED_TO_HANDSET", "DELIVERED", callbackData=m)
        for m in mids
    ]
    body = orjson.dumps({"results": results})
    assert len(body) > 2_500_000
    started = time.perf_counter()
    reply = await call(stack, "POST", "/webhooks/infobip", body=body, headers=INFOBIP_AUTH)
    elapsed = time.perf_counter() - started
    print(
        f"\ninfobip: 5,000 reports, {len(body) / 1e6:.1f} MB, answered in {elapsed * 1000:.0f} ms"
    )
    assert reply.status == 200, reply.body
    assert len(set(reply.body["eventIds"])) == 5000
    for mid in (mids[0], mids[2500], mids[-1]):
        await stack.wait_for_status(mid, "DELIVERED", timeout=30)


async def test_infobip_wrong_credentials_are_refused(stack: Stack) -> None:
    """Wrong Basic credentials get 401 whatever the body."""
    headers = {"Authorization": basic("infobip-user", "guess")}
    assert (
        await call(stack, "POST", "/webhooks/infobip", body=b'{"results": []}', headers=headers)
    ).status == 401


async def test_oversized_body_is_413_before_parsing(stack: Stack) -> None:
    """A body over max_body_bytes (8 MiB) gets a 413 problem document."""
    body = b"{" + b" " * (8 * 1024 * 1024 + 10) + b"}"
    reply = await call(stack, "POST", "/webhooks/infobip", body=body, headers=INFOBIP_AUTH)
    assert reply.status == 413
    assert reply.headers["Content-Type"].startswith("application/problem+json")


# --- Sinch -------------------------------------------------------------------------------


async def test_sinch_recipients_of_one_batch_are_separate_messages(stack: Stack) -> None:
    """Two recipients of one batch: each report reaches only its own recipient's message."""
    batch = "01J" + uuid.uuid4().hex[:23].upper()
    phone_a, phone_b = new_phone(), new_phone()
    mid_a = await accept(stack, "sinch", batch, phone="+" + phone_a)
    mid_b = await accept(stack, "sinch", batch.lower(), phone="+" + phone_b)
    reports = [
        {
            "recipient": phone_a,
            "status": "Delivered",
            "code": 0,
            "operator_status_at": "2025-01-15T12:30:00Z",
        },
        {
            "recipient": phone_b,
            "status": "Failed",
            "code": 11,
            "operator_status_at": "2025-01-15T12:30:01Z",
        },
        {
            "recipient": phone_b,
            "status": "Dispatched",
            "code": 401,
            "operator_status_at": "2025-01-15T12:29:00Z",
        },
    ]
    for report in reports:
        body = orjson.dumps({"type": "recipient_delivery_report_sms", "batch_id": batch, **report})
        assert (
            await call(stack, "POST", "/webhooks/sinch", body=body, headers=SINCH_AUTH)
        ).status == 200
    await stack.wait_for_status(mid_a, "DELIVERED")
    doc = (await stack.wait_for_status(mid_b, "UNDELIVERED")).body["message"]
    assert doc["provider"]["id"] == f"{batch}/+{phone_b}"


async def test_sinch_batch_report_with_recipients(stack: Stack) -> None:
    """A full batch report updates each listed recipient's message."""
    batch = "01J" + uuid.uuid4().hex[:23].upper()
    phones = [new_phone(), new_phone()]
    mids = [await accept(stack, "sinch", f"{batch}/{p}", phone="+" + p) for p in phones]
    body = orjson.dumps(
        {
            "type": "delivery_report_sms",
            "batch_id": batch,
            "statuses": [
                {"code": 0, "status": "Delivered", "count": 1, "recipients": [phones[0]]},
                {"code": 402, "status": "Aborted", "count": 1, "recipients": [phones[1]]},
            ],
        }
    )
    assert (
        await call(stack, "POST", "/webhooks/sinch", body=body, headers=SINCH_AUTH)
    ).status == 200
    await stack.wait_for_status(mids[0], "DELIVERED")
    doc = (await stack.wait_for_status(mids[1], "REJECTED")).body["message"]
    assert doc["provider"]["message"] == "Message unroutable"


# --- SMPP (Jasmin, Kannel) -----------------------------------------------------------------


async def test_smpp_decimal_receipt_matches_hex_submit_id_in_local_time(stack: Stack) -> None:
    """Receipt id:0000043794 (decimal) finds the message accepted as 00ab12 (hex); the done
    date is Berlin time; Jasmin-style ACK body."""
    number = uuid.uuid4().int % 10**9
    mid = await accept(stack, "smpp", f"00{number:x}")
    text = f"id:{number:012d} sub:001 dlvrd:001 submit date:2501151230 done date:2501151233 stat:DELIVRD err:000 text:Hi"
    reply = await call(
        stack, "GET", "/webhooks/smpp?" + urlencode({"token": SMPP_TOKEN, "receipt": text})
    )
    assert (reply.status, reply.raw) == (200, b"ACK/Jasmin")
    doc = (await stack.wait_for_status(mid, "DELIVERED")).body["message"]
    assert doc["statusChangedAt"] == "2025-01-15T11:33:00Z"
    assert doc["provider"]["id"] == f"{number:X}"


async def test_smpp_jasmin_post_answers_exactly_ack_jasmin(stack: Stack) -> None:
    """A Jasmin level-2 DLR by form POST is applied by Jasmin's id and answered ACK/Jasmin."""
    jid = str(uuid.uuid4())
    mid = await accept(stack, "smpp", jid)
    form = {
        "id": jid,
        "id_smsc": "2567",
        "message_status": "UNDELIV",
        "level": "2",
        "donedate": "2501151233",
        "err": "012",
    }
    headers = {"Content-Type": FORM}
    reply = await call(
        stack,
        "POST",
        f"/webhooks/smpp?token={SMPP_TOKEN}",
        body=urlencode(form).encode(),
        headers=headers,
    )
    assert (reply.status, reply.raw, reply.headers["Content-Type"].split(";")[0]) == (
        200,
        b"ACK/Jasmin",
        "text/plain",
    )
    doc = (await stack.wait_for_status(mid, "UNDELIVERED")).body["message"]
    assert doc["provider"]["code"] == "12"


async def test_smpp_wrong_token_is_refused(stack: Stack) -> None:
    """A DLR with a wrong token gets 401 and no ACK."""
    reply = await call(stack, "GET", "/webhooks/smpp?" + urlencode({"token": "guess", "type": "1"}))
    assert reply.status == 401
    assert reply.raw != b"ACK/Jasmin"


# --- bad input and secure defaults ------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "headers"),
    [
        ("POST", "/webhooks/infobip", b"[1,2", INFOBIP_AUTH),
        ("POST", "/webhooks/infobip", b'{"results": {"status": {}}}', INFOBIP_AUTH),
        ("POST", "/webhooks/sinch", b'{"type": "mo_text"}', SINCH_AUTH),
        ("GET", f"/webhooks/smpp?token={SMPP_TOKEN}&receipt=stat%3ADELIVRD", b"", {}),
        ("GET", f"/webhooks/smpp?token={SMPP_TOKEN}&receipt=id%3A1%00%20stat%3ADELIVRD", b"", {}),
        ("POST", "/webhooks/vonage-messages", b"\xff\xfe", {}),
    ],
)
async def test_malformed_bodies_are_400_problem_documents(
    stack: Stack, method: str, path: str, body: bytes, headers: dict[str, str]
) -> None:
    """Malformed callbacks (bad JSON, no results array, no id, a NUL in an id) get 400, never
    500. (One bad entry of a batch is skipped, not refused: test_field_reports_providers.)"""
    if path.endswith("vonage-messages"):
        headers = {"Authorization": f"Bearer {vonage_jwt(body)}"}
    reply = await call(stack, method, path, body=body, headers=headers)
    assert reply.status == 400, reply.raw
    assert reply.body["errors"]


async def test_unconfigured_adapters_refuse_unless_allowed_unsigned(stack: Stack) -> None:
    """An ingest without provider credentials answers 401 to every adapter, except those
    listed in ALLOW_UNSIGNED_PROVIDERS, whose callbacks then reach the read API."""
    bare = create_ingest(
        IngestSettings(**stack.common(), produce_timeout_s=3.0, allow_unsigned_providers=["smpp"])
    )
    base = await stack._serve(bare)  # a second ingest on the stack's topic

    async def ready() -> bool:
        return (await call(stack, "GET", "/readyz", base=base)).status == 200

    await stack.wait_for(ready, 60, "the second ingest to reach Kafka")
    sid = new_sid()
    pairs = twilio_params(sid, "delivered")
    signed = {
        "X-Twilio-Signature": twilio_signature(base + "/webhooks/twilio", pairs),
        "Content-Type": FORM,
    }
    for method, path, body, headers in (
        ("POST", "/webhooks/twilio", twilio_form(pairs), signed),
        ("GET", "/webhooks/vonage?" + urlencode(dlr(vonage_id(), "delivered")), b"", {}),
        ("POST", "/webhooks/vonage-messages", b"{}", {}),
        ("POST", "/webhooks/infobip", b'{"results": []}', INFOBIP_AUTH),
        ("POST", "/webhooks/sinch", b"{}", SINCH_AUTH),
    ):
        assert (
            await call(stack, method, path, body=body, headers=headers, base=base)
        ).status == 401, path
    jid = str(uuid.uuid4())
    mid = await accept(stack, "smpp", jid)
    reply = await call(
        stack,
        "GET",
        "/webhooks/smpp?" + urlencode({"id": jid, "message_status": "DELIVRD", "level": "2"}),
        base=base,
    )
    assert (reply.status, reply.raw) == (200, b"ACK/Jasmin")
    await stack.wait_for_status(mid, "DELIVERED")
