"""Builders of canonical events and signed webhook requests for the tests."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from typing import Any

from standardwebhooks.webhooks import Webhook

from schemas.events import EventRecord, ProviderInfo, Reference, SmsInfo
from schemas.status import Channel, Status

SEED_ID = "011d9d6e-b5b9-4cb9-be13-2bc336a923ce"
SEED_PROVIDER_ID = "bbe7a7b4-067b-484e-a55c-318f5716997e"
SEED_DOCUMENT: dict[str, Any] = {
    "message": {
        "id": "011d9d6e-b5b9-4cb9-be13-2bc336a923ce",
        "providerAcceptanceAt": "2026-02-04T06:54:35Z",
        "statusChangedAt": "2026-02-04T06:54:55Z",
        "reference": {"service": "DIGITALSIGN", "action": "AUTH", "key": "EXT_KEY"},
        "channel": "SMS",
        "status": "DELIVERED",
        "provider": {
            "name": "PROVIDER1",
            "id": "bbe7a7b4-067b-484e-a55c-318f5716997e",
            "status": "delivered",
            "code": "0",
        },
        "sms": {"segments": 1},
    }
}
"""The response example of the seed document (docs/design.md §3), verbatim."""


def new_secret() -> str:
    """A fresh Standard Webhooks secret (``whsec_`` + base64 of 24 random bytes)."""
    return "whsec_" + base64.b64encode(uuid.uuid4().bytes + uuid.uuid4().bytes[:8]).decode()


def sign(secret: str, body: bytes, msg_id: str | None = None) -> dict[str, str]:
    """Standard Webhooks headers for ``body`` signed now with ``secret``."""
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    now = datetime.now(tz=UTC)
    signature = Webhook(secret).sign(msg_id, now, body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }


def random_phone() -> str:
    """A fresh E.164 number, so tests never share a phone index by accident."""
    return "+1555" + str(uuid.uuid4().int)[:8]


def acceptance(
    message_id: str,
    *,
    at: str = "2026-02-04T06:54:35Z",
    phone: str | None = None,
    channel: str = "SMS",
    reference: dict[str, str] | None = None,
    provider: str = "PROVIDER1",
    provider_id: str | None = None,
    segments: int | None = 1,
    text: str | None = None,
) -> dict[str, Any]:
    """A canonical PROVIDER_ACCEPTANCE event as a sender posts it (a fresh phone by default)."""
    event: dict[str, Any] = {
        "messageId": message_id,
        "status": "PROVIDER_ACCEPTANCE",
        "occurredAt": at,
        "channel": channel,
        "phoneNumber": phone or random_phone(),
        "provider": {
            "name": provider,
            "id": provider_id or str(uuid.uuid4()),
            "status": "accepted",
            "code": "0",
        },
    }
    if reference is not None:
        event["reference"] = reference
    if text is not None:
        event["text"] = text
    elif segments is not None and channel == "SMS":
        event["sms"] = {"segments": segments}
    return event


def receipt(
    status: str,
    at: str,
    *,
    message_id: str | None = None,
    provider: str | None = None,
    provider_id: str | None = None,
    provider_status: str | None = None,
    code: str = "0",
    message: str | None = None,
) -> dict[str, Any]:
    """A canonical status event naming its message by id or by provider name + id."""
    prov: dict[str, Any] = {"status": provider_status or status.lower(), "code": code}
    if provider is not None:
        prov["name"] = provider
    if provider_id is not None:
        prov["id"] = provider_id
    if message is not None:
        prov["message"] = message
    event: dict[str, Any] = {"status": status, "occurredAt": at, "provider": prov}
    if message_id is not None:
        event["messageId"] = message_id
    return event


def record(
    status: Status,
    occurred_ms: int,
    *,
    message_id: str = SEED_ID,
    channel: Channel | None = None,
    phone: str | None = None,
    reference_key: str | None = None,
    provider_status: str | None = None,
    code: str | None = "0",
    event_id: str | None = None,
    received_ms: int = 1_800_000_000_000,
) -> EventRecord:
    """An :class:`EventRecord` for pure-fold and store tests."""
    is_acceptance = status is Status.PROVIDER_ACCEPTANCE
    return EventRecord(
        eventId=event_id or str(uuid.uuid4()),
        messageId=message_id,
        status=status,
        occurredAt=occurred_ms,
        receivedAt=received_ms,
        channel=(channel or Channel.SMS) if is_acceptance else None,
        phoneNumber=(phone or "+1234567890") if is_acceptance else None,
        reference=Reference(key=reference_key) if is_acceptance and reference_key else None,
        sms=SmsInfo(segments=1)
        if is_acceptance and (channel or Channel.SMS) is Channel.SMS
        else None,
        provider=ProviderInfo(
            name="P1" if is_acceptance else None,
            id="pid-1" if is_acceptance else None,
            status=provider_status or status.value.lower(),
            code=code,
        ),
    )
