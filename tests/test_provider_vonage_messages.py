"""Vonage Messages API adapter: status mapping (RCS read included), signed-webhook JWT (no server)."""

from __future__ import annotations

import dataclasses
import time
import uuid
from typing import Any

import orjson
import pytest
from vonage_jwt.verify_jwt import verify_signature

from ingest.errors import InvalidBody, Unauthenticated, UnsignedRetry
from ingest.providers.common import Callback
from ingest.providers.vonage_messages import VonageMessagesAdapter
from schemas.status import Status
from tests.support.providers import VONAGE_SECRET, callback, vonage_jwt

NOW_MS = int(time.time() * 1000)
ADAPTER = VonageMessagesAdapter(VONAGE_SECRET)


def _status(status: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "message_uuid": str(uuid.uuid4()),
        "to": "15550100001",
        "from": "AcmeBrand",
        "timestamp": "2025-01-15T12:31:02Z",
        "status": status,
        "channel": "rcs",
        "destination": {"network_code": "310260"},
    }
    body.update(extra)
    return body


def _signed(body: dict[str, Any] | bytes, token: str | None = None) -> Callback:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    auth = f"Bearer {token or vonage_jwt(raw)}"
    return callback(raw, headers={"Authorization": auth}, received_ms=NOW_MS)


@pytest.mark.parametrize(
    ("word", "status"),
    [
        ("submitted", Status.SENT),
        ("delivered", Status.DELIVERED),
        ("read", Status.READ),
        ("rejected", Status.REJECTED),
        ("undeliverable", Status.REJECTED),
    ],
)
def test_each_status_maps_per_the_table(word: str, status: Status) -> None:
    """Every Messages API status becomes its canonical status, under provider "vonage"."""
    body = _status(word)
    record = ADAPTER.handle(_signed(body)).records[0]
    assert record.status is status
    assert (record.provider.name, record.provider.id) == ("vonage", body["message_uuid"])
    assert (record.provider.status, record.provider.code) == (word, "0")
    assert record.occurred_ms == 1_736_944_262_000
    assert record.phone_number == "+15550100001"
    assert record.source == "vonage-messages"


def test_rejection_for_an_expired_ttl_is_undelivered() -> None:
    """A rejected whose error says the TTL expired is UNDELIVERED; others stay REJECTED."""
    expired = _status(
        "rejected", error={"title": "1300", "detail": "Message TTL expired before delivery"}
    )
    record = ADAPTER.handle(_signed(expired)).records[0]
    assert record.status is Status.UNDELIVERED
    assert (record.provider.code, record.provider.message) == (
        "1300",
        "Message TTL expired before delivery",
    )
    refused = _status(
        "rejected",
        error={"type": "https://x/errors#1050", "title": 1050, "detail": "Number barred"},
    )
    record = ADAPTER.handle(_signed(refused)).records[0]
    assert (record.status, record.provider.code) == (Status.REJECTED, "1050")


def test_client_ref_uuid_names_our_message() -> None:
    """client_ref holding a UUID sets messageId."""
    mid = str(uuid.uuid4())
    assert ADAPTER.handle(_signed(_status("read", client_ref=mid))).records[0].message_id == mid


def test_messenger_recipient_is_not_read_as_a_phone_number() -> None:
    """On channels whose ``to`` is no phone number, no phoneNumber is set."""
    body = _status("delivered", channel="messenger", to="1234567890123456")
    assert ADAPTER.handle(_signed(body)).records[0].phone_number is None


def test_unknown_status_is_skipped() -> None:
    """An unknown status word is acknowledged without an event."""
    assert ADAPTER.handle(_signed(_status("teleported"))).skipped[0].reason == "unknown"


def test_our_jwt_is_accepted_by_the_vonage_sdk_too() -> None:
    """The test JWT verifies with vonage-jwt's verify_signature, and with our check."""
    raw = orjson.dumps(_status("delivered"))
    token = vonage_jwt(raw)
    assert verify_signature(token, VONAGE_SECRET)
    assert not verify_signature(token, VONAGE_SECRET + "x")
    assert ADAPTER.handle(_signed(raw, token)).records


def test_tampered_body_fails_the_payload_hash() -> None:
    """A body changed after signing fails the payload_hash check."""
    raw = orjson.dumps(_status("rejected"))
    token = vonage_jwt(raw)
    with pytest.raises(Unauthenticated):
        ADAPTER.handle(_signed(raw.replace(b"rejected", b"delivered"), token))


def test_wrong_secret_stale_iat_and_missing_payload_hash_are_refused() -> None:
    """Another secret, an iat older than the window, or no payload_hash: refused."""
    raw = orjson.dumps(_status("delivered"))
    for token in (
        vonage_jwt(raw, "another-secret-that-is-long-enough-0123"),
        vonage_jwt(raw, iat=NOW_MS // 1000 - 26 * 3600),
        vonage_jwt(raw, payload_hash=None),
    ):
        with pytest.raises(Unauthenticated):
            ADAPTER.handle(_signed(raw, token))


def test_missing_jwt_asks_vonage_to_retry_signed() -> None:
    """No Authorization header: UnsignedRetry (answered 503), not a plain 401."""
    with pytest.raises(UnsignedRetry):
        ADAPTER.handle(callback(orjson.dumps(_status("delivered"))))


def test_a_retry_is_the_same_event() -> None:
    """The same callback signed twice (new JWT) gives the same event id."""
    body = _status("delivered")
    first = ADAPTER.handle(_signed(body)).records[0]
    again = ADAPTER.handle(dataclasses.replace(_signed(body), received_ms=NOW_MS + 30_000)).records[
        0
    ]
    assert first.event_id == again.event_id


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "delivered"}, "message_uuid"),
        ({"message_uuid": str(uuid.uuid4())}, "status"),
        ({"message_uuid": str(uuid.uuid4()), "status": "rejected", "error": "boom"}, "error"),
        ({"message_uuid": ["x"], "status": "read"}, "message_uuid"),
    ],
)
def test_malformed_callbacks_name_the_bad_field(body: dict[str, Any], field: str) -> None:
    """Missing or mistyped fields are a 400 naming the field."""
    with pytest.raises(InvalidBody) as err:
        VonageMessagesAdapter(None).handle(callback(orjson.dumps(body)))
    assert [e.field for e in err.value.errors] == [field]
