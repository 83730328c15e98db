"""Benchmark data: canonical webhook bodies (signed), log records, and projection loading.

Messages look like the seed document's example: SMS, one segment, a reference
``{service, action, key}``, provider PROVIDER1 with a UUID provider id; the acceptance is
followed by one DELIVERED receipt that names the message by ``messageId``.
"""

from __future__ import annotations

import base64
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from redis.asyncio import Redis as AsyncRedis
from standardwebhooks.webhooks import Webhook

from projector import generations
from projector.store import ProjectionStore
from schemas import packed
from schemas.events import EventRecord
from schemas.layout import DEFAULT_BUCKETS

DAY_MS = 86_400_000


def new_secret() -> str:
    """A fresh Standard Webhooks secret (``whsec_`` + base64 of 24 random bytes)."""
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


def iso_ms(ms: int) -> str:
    """Epoch ms as ISO 8601 with milliseconds, UTC."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Message:
    """What one benchmark message is made of (times in epoch ms)."""

    message_id: str
    phone: str
    reference_key: str
    provider_id: str
    accepted_ms: int
    delivered_ms: int


def make_messages(
    count: int, *, phones: int | None = None, references: int | None = None, start_ms: int = 0
) -> list[Message]:
    """``count`` messages, one millisecond apart, sent in the last hour by default.

    ``phones``/``references``: how many distinct phone numbers / reference keys they share
    (None: each message has its own).
    """
    base = start_ms or int(time.time() * 1000) - 3_600_000
    tag = uuid.uuid4().hex[:6]
    out = []
    for i in range(count):
        p = i if phones is None else i % phones
        r = i if references is None else i % references
        out.append(
            Message(
                message_id=str(uuid.uuid4()),
                phone=f"+3361{p:08d}",
                reference_key=f"EXT-{tag}-{r:08d}",
                provider_id=str(uuid.uuid4()),
                accepted_ms=base + i,
                delivered_ms=base + i + 2_500,
            )
        )
    return out


def acceptance_event(msg: Message) -> dict[str, Any]:
    """The canonical PROVIDER_ACCEPTANCE webhook event of ``msg``."""
    return {
        "messageId": msg.message_id,
        "status": "PROVIDER_ACCEPTANCE",
        "occurredAt": iso_ms(msg.accepted_ms),
        "channel": "SMS",
        "phoneNumber": msg.phone,
        "reference": {"service": "DIGITALSIGN", "action": "AUTH", "key": msg.reference_key},
        "sms": {"segments": 1},
        "provider": {
            "name": "PROVIDER1",
            "id": msg.provider_id,
            "status": "accepted",
            "code": "0",
        },
    }


def delivered_event(msg: Message) -> dict[str, Any]:
    """The canonical DELIVERED webhook event of ``msg`` (names it by ``messageId``)."""
    return {
        "messageId": msg.message_id,
        "status": "DELIVERED",
        "occurredAt": iso_ms(msg.delivered_ms),
        "provider": {"status": "delivered", "code": "0"},
    }


def signed(secret: str, body: bytes) -> dict[str, str]:
    """Standard Webhooks headers for ``body`` signed now (valid for 5 minutes)."""
    msg_id = f"msg_{uuid.uuid4().hex}"
    now = datetime.now(tz=UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, now, body.decode()),
        "content-type": "application/json",
    }


def records(msg: Message, received_ms: int | None = None) -> tuple[EventRecord, EventRecord]:
    """The two log records ingest would publish for ``msg`` (acceptance, DELIVERED)."""
    now = received_ms if received_ms is not None else int(time.time() * 1000)
    acc = EventRecord.model_validate(
        {
            "eventId": str(uuid.uuid4()),
            "messageId": msg.message_id,
            "status": "PROVIDER_ACCEPTANCE",
            "occurredAt": msg.accepted_ms,
            "receivedAt": now,
            "channel": "SMS",
            "phoneNumber": msg.phone,
            "reference": {"service": "DIGITALSIGN", "action": "AUTH", "key": msg.reference_key},
            "sms": {"segments": 1},
            "provider": {
                "name": "PROVIDER1",
                "id": msg.provider_id,
                "status": "accepted",
                "code": "0",
            },
        }
    )
    rec = EventRecord.model_validate(
        {
            "eventId": str(uuid.uuid4()),
            "messageId": msg.message_id,
            "status": "DELIVERED",
            "occurredAt": msg.delivered_ms,
            "receivedAt": now,
            "provider": {"status": "delivered", "code": "0"},
        }
    )
    return acc, rec


async def projection_store(
    redis_url: str, generation: str, buckets: int = DEFAULT_BUCKETS
) -> ProjectionStore:
    """The projector's own store for a new format-2 ``generation`` (90-day retention)."""
    conn = AsyncRedis.from_url(redis_url, decode_responses=False)
    try:
        layout = await generations.layout(conn, generation, buckets)
    finally:
        await conn.aclose()
    assert layout is not None, "a format-2 generation name"
    return ProjectionStore.from_url(redis_url, layout, 90 * DAY_MS)


async def load_projection(
    redis_url: str,
    generation: str,
    messages: Sequence[Message],
    batch: int = 1000,
    buckets: int = DEFAULT_BUCKETS,
) -> None:
    """Write messages into a projection generation through the real projector code path
    (:meth:`projector.store.ProjectionStore.apply`): acceptances of a batch first, then their
    DELIVERED receipts in a second apply, as a live projector would see them."""
    store = await projection_store(redis_url, generation, buckets)
    for start in range(0, len(messages), batch):
        pairs = [records(m) for m in messages[start : start + batch]]
        report = await store.apply([a for a, _ in pairs])
        if report.refusals:
            raise RuntimeError(f"the projection refused events: {report.refusals[:3]}")
        await store.apply([r for _, r in pairs])
    store.redis.close()


def document_of(message_id: str, raw: bytes) -> bytes:
    """The read API document of a stored message value."""
    return packed.document(message_id, raw, 0) or b""


def dumps(obj: Any) -> bytes:
    """Compact JSON."""
    return orjson.dumps(obj)
