"""Standard Webhooks signatures of outgoing deliveries (the ``standardwebhooks`` library).

Headers: ``webhook-id`` (the same on every attempt of one delivery), ``webhook-timestamp``
(epoch seconds of this attempt) and ``webhook-signature``: ``v1,<base64>`` per active secret,
space-separated, so a receiver that knows either secret of a rotation verifies it.
"""

from __future__ import annotations

import binascii
from collections.abc import Sequence
from datetime import UTC, datetime

from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook


def check_secret(secret: str) -> None:
    """Raise ``ValueError`` unless ``secret`` is a usable ``whsec_<base64>`` secret."""
    try:
        Webhook(secret)
    except (binascii.Error, ValueError, RuntimeError, EmptyWebhookSecretError) as exc:
        raise ValueError(f"not a Standard Webhooks secret (whsec_<base64>): {exc}") from None


def signature_headers(
    secrets: Sequence[str], webhook_id: str, body: str, now: datetime | None = None
) -> dict[str, str]:
    """The three Standard Webhooks headers for ``body``; no signature without secrets."""
    at = now or datetime.now(tz=UTC)
    headers = {"webhook-id": webhook_id, "webhook-timestamp": str(int(at.timestamp()))}
    signatures = [Webhook(s).sign(webhook_id, at, body) for s in secrets]
    if signatures:
        headers["webhook-signature"] = " ".join(signatures)
    return headers
