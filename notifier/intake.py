"""Taking change records in: remember webhooks, fan out to endpoints, queue deliveries.

A change for an endpoint is queued only when its sequence is higher than any taken in for
that (message, endpoint) before, so a repeat (a batch applied again, a replay into a new
generation) is dropped, a newer status supersedes an older one still waiting, and an older
status arriving late is never sent after a newer one (docs/push.md).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

import orjson
from pydantic import ValidationError

from notifier.endpoints import Directory, Endpoint
from notifier.metrics import TAKEN_IN
from notifier.state import State
from schemas.changes import ChangeRecord, now_ms
from schemas.deliveries import Delivery
from schemas.status import Status
from schemas.timefmt import format_seconds
from schemas.webhook_config import WebhookConfig

log = logging.getLogger(__name__)

WEBHOOK_ID_NAMESPACE = uuid.UUID("0b7a4c3e-55b1-4f0e-8d5f-6b2f6f1c9a21")
RESULTS = {0: "dropped", 1: "queued", 2: "superseding"}


def webhook_id(endpoint: str, message_id: str, sequence: int) -> str:
    """The ``webhook-id`` of one change to one endpoint: the same on every attempt, every
    repeat and every replay, so a receiver can drop a message it already processed."""
    return "msg_" + uuid.uuid5(WEBHOOK_ID_NAMESPACE, f"{endpoint}|{message_id}|{sequence}").hex


def body_of(change: ChangeRecord, endpoint: Endpoint, wid: str) -> str:
    """The seed system's webhook body: ``{id, webhookConfigurationId, type, createdAt,
    message}``, ``message`` being the read API's document of the message after the change."""
    return orjson.dumps(
        {
            "id": wid,
            "webhookConfigurationId": endpoint.id,
            "type": "STATUS_UPDATE",
            "createdAt": format_seconds(change.emitted_ms),
            "message": change.message,
        }
    ).decode()


def decode(values: Sequence[bytes | None]) -> list[ChangeRecord]:
    """Parse record values; one that is not a change record is logged and counted, never
    retried (it can never become one)."""
    out = []
    for value in values:
        try:
            out.append(ChangeRecord.from_json(value or b""))
        except ValidationError as exc:
            TAKEN_IN.labels("invalid").inc()
            log.error("not a change record, skipped: %s", exc.errors(include_url=False)[:3])
    return out


class Intake:
    """Turns a batch of change records into queued deliveries (Redis only; no HTTP)."""

    def __init__(self, state: State, directory: Directory) -> None:
        self.state = state
        self.directory = directory

    async def take(self, changes: Sequence[ChangeRecord]) -> int:
        """Queue the deliveries of ``changes``; returns how many were queued. Raises redis-py
        errors (the caller retries the batch: taking in twice is harmless)."""
        hooks: dict[str, WebhookConfig] = {}
        for change in changes:
            if change.webhook is not None:
                hooks[change.message_id] = change.webhook
                await self.state.remember_webhook(
                    change.message_id, change.webhook.model_dump_json().encode()
                )
        wanted = [c for c in changes if c.status is not Status.PROVIDER_ACCEPTANCE]
        unknown = sorted({c.message_id for c in wanted} - hooks.keys())
        for message_id, raw in zip(unknown, await self.state.webhooks(unknown), strict=True):
            if raw is not None:
                hooks[message_id] = WebhookConfig.model_validate_json(raw)
        disabled = await self.state.disabled()
        now = now_ms()
        items: list[tuple[Delivery, int]] = []
        for change in wanted:
            endpoints = self.directory.endpoints(change, hooks.get(change.message_id))
            endpoints = [e for e in endpoints if e.id not in disabled]
            if not endpoints:
                TAKEN_IN.labels("no_endpoint").inc()
            for endpoint in endpoints:
                wid = webhook_id(endpoint.id, change.message_id, change.sequence)
                delivery = Delivery(
                    webhookId=wid,
                    messageId=change.message_id,
                    endpoint=endpoint.id,
                    url=endpoint.url,
                    headers=dict(endpoint.headers),
                    sequence=change.sequence,
                    status=change.status.value,
                    body=body_of(change, endpoint, wid),
                    createdAt=change.emitted_ms,
                )
                items.append((delivery, now))
        results = await self.state.enqueue(items)
        for result in results:
            TAKEN_IN.labels(RESULTS[result]).inc()
        return sum(1 for r in results if r)
