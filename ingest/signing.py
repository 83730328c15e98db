"""Signature checks for the canonical webhook: the Standard Webhooks specification.

``webhook-id``, ``webhook-timestamp`` (Unix seconds, 5-minute tolerance) and
``webhook-signature`` (``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``), checked with the
maintained ``standardwebhooks`` package rather than code of our own.
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from ingest.errors import Unauthenticated


class StandardWebhookVerifier:
    """Verifies bodies signed with one secret (``whsec_`` + base64, as the spec's tooling makes).

    Raises ``ValueError`` at construction when the secret is empty or not base64.
    """

    def __init__(self, secret: str) -> None:
        try:
            self._webhook = Webhook(secret)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("MSGSTATUS_WEBHOOK_SECRET is not a whsec_/base64 secret") from exc

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
