"""Signature checks for the canonical webhook: the Standard Webhooks specification.

``webhook-id``, ``webhook-timestamp`` (Unix seconds, 5-minute tolerance) and
``webhook-signature`` (``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``), checked with the
maintained ``standardwebhooks`` package rather than code of our own.
"""

from __future__ import annotations

import binascii
import time
from collections.abc import Mapping

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from ingest.errors import Unauthenticated

TOLERANCE_S = 300
"""The Standard Webhooks timestamp tolerance (the ``standardwebhooks`` package's own)."""


class StandardWebhookVerifier:
    """Verifies bodies signed with one secret (``whsec_`` + base64, as the spec's tooling makes).

    Raises ``ValueError`` at construction when the secret is empty or not base64.
    """

    def __init__(self, secret: str) -> None:
        try:
            self._webhook = Webhook(secret)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("MSGSTATUS_WEBHOOK_SECRET is not a whsec_/base64 secret") from exc

    @staticmethod
    def precheck(headers: Mapping[str, str], now_s: float | None = None) -> None:
        """Before the body is read: the three headers present, ``webhook-timestamp`` a number
        within the tolerance, ``webhook-signature`` holding a ``v1,<base64>`` entry.

        Raises :class:`Unauthenticated`; :meth:`verify` still checks the signature itself.
        """
        wid = headers.get("webhook-id", "")
        stamp = headers.get("webhook-timestamp", "").strip()
        signature = headers.get("webhook-signature", "")
        if not wid or not stamp or not signature:
            raise Unauthenticated(
                "webhook signature rejected: webhook-id, webhook-timestamp and "
                "webhook-signature are required"
            )
        now = time.time() if now_s is None else now_s
        if not stamp.isdigit() or len(stamp) > 12 or abs(now - int(stamp)) > TOLERANCE_S:
            raise Unauthenticated("webhook signature rejected: webhook-timestamp is not recent")
        if not any(part.startswith("v1,") and len(part) > 3 for part in signature.split()):
            raise Unauthenticated(
                "webhook signature rejected: malformed webhook-signature (no v1,<base64> entry)"
            )

    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        """Raise :class:`Unauthenticated` unless the headers carry a valid, fresh signature."""
        wanted = {
            name: headers.get(name, "")
            for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
        }
        try:
            self._webhook.verify(body, wanted, json_parse=False)
        except WebhookVerificationError as exc:
            raise Unauthenticated(f"webhook signature rejected: {exc}") from None
        except (UnicodeDecodeError, ValueError, binascii.Error):
            # A malformed header ("v1" without a comma, bad base64, a timestamp that is no
            # number) is a failed signature, not a server error; its parser's words stay here.
            raise Unauthenticated(
                "webhook signature rejected: malformed webhook-signature or webhook-timestamp"
            ) from None
