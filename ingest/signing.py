"""Signature checks for the canonical webhook: the Standard Webhooks specification.

``webhook-id``, ``webhook-timestamp`` (Unix seconds, 5-minute tolerance) and
``webhook-signature`` (``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``), checked with the
maintained ``standardwebhooks`` package rather than code of our own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
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
        self._key = self._webhook._whsecret  # the decoded secret, for _matches

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

    def _matches(self, body: bytes, wid: str, stamp: str, signature: str) -> bool:
        """True when the package would accept these headers: a fresh timestamp and, before any
        malformed entry, a ``v1`` signature that matches. False means "ask the package" (it
        then names the problem), never "rejected": this only skips the package's re-signing
        (datetime parsing, decoding the body and encoding it again) on the common path.

        The package signs ``f"{id}.{floor(float(timestamp))}.{body}"``; for the decimal
        timestamps :meth:`precheck` lets through, ``int`` gives the same text.
        """
        stamp = stamp.strip()
        if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
            return False
        seconds = int(stamp)
        try:
            prefix = f"{wid}.{seconds}.".encode()
        except UnicodeEncodeError:
            return False
        if abs(time.time() - seconds) > TOLERANCE_S:
            return False
        expected = hmac.new(self._key, prefix + body, hashlib.sha256).digest()
        for entry in signature.split(" "):
            version, comma, value = entry.partition(",")
            if not comma or "," in value:
                break  # the package fails on this entry before looking further
            if version != "v1":
                continue
            try:
                given = base64.b64decode(value)
            except ValueError:  # binascii.Error, or non-ASCII text
                break
            if hmac.compare_digest(expected, given):
                return True
        return False

    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        """Raise :class:`Unauthenticated` unless the headers carry a valid, fresh signature.

        ``body`` must be UTF-8 (the caller checks it first, to name that problem)."""
        wid = headers.get("webhook-id", "")
        stamp = headers.get("webhook-timestamp", "")
        signature = headers.get("webhook-signature", "")
        if wid and stamp and signature and self._matches(body, wid, stamp, signature):
            return
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
