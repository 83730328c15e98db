"""Vonage SMS API delivery receipts (``GET|POST /webhooks/vonage``) -> canonical events.

Source: docs/providers.md section 2a (Nexmo/api-specification ``definitions/sms.yml``
DeliveryReceipt; Vonage "Delivery receipts" and "Signing messages" guides). The mapping
table and its decisions are written out in the project's docs/providers.md.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import orjson

from ingest.errors import Unauthenticated
from ingest.providers import ids
from ingest.providers.auth import SecretAdapter, same
from ingest.providers.common import (
    FORM,
    JSON,
    AdapterSpec,
    Callback,
    Credential,
    Mapped,
    Receipt,
    Skip,
    collect,
    lookup,
    secret_of,
)
from ingest.providers.fields import (
    form_pairs,
    invalid,
    json_object,
    recipient_hint,
    require_id,
    uuid_or_none,
)
from ingest.providers.times import read_time
from schemas.status import Status

if TYPE_CHECKING:
    from ingest.settings import IngestSettings

VonageMethod = Literal["md5hash", "md5", "sha1", "sha256", "sha512"]
"""How Vonage signs SMS API DLRs (``MSGSTATUS_VONAGE_SIGNATURE_METHOD``, as in its dashboard)."""

NAME = "vonage"
FAMILY = "vonage"
"""The ``provider.name`` of this adapter's events."""
FUTURE_SKEW_S = 300
"""A signed DLR's ``timestamp`` may run ahead of our clock by this much (clock skew)."""

STATUSES: dict[str, Status | Skip] = {
    "delivered": Status.DELIVERED,
    "accepted": Status.SENT,
    "buffered": Status.SENT,
    "unknown": Status.SENT,
    "expired": Status.UNDELIVERED,
    "failed": Status.UNDELIVERED,
    "rejected": Status.REJECTED,
}
"""DLR ``status`` -> canonical status. Decisions: docs/providers.md, Vonage SMS table."""

ERRORS: dict[str, str] = {
    "1": "Unknown",
    "2": "Absent subscriber - temporary",
    "3": "Absent subscriber - permanent",
    "4": "Call barred by user",
    "5": "Portability error",
    "6": "Anti-spam rejection",
    "7": "Handset busy",
    "8": "Network error",
    "9": "Illegal number",
    "10": "Illegal message",
    "11": "Unroutable",
    "12": "Destination unreachable",
    "13": "Subscriber age restriction",
    "14": "Number blocked by carrier",
    "15": "Pre-paid - insufficent funds",
    "99": "General error",
}
"""``err-code`` descriptions (Vonage "Delivery receipts", DLR error codes); the DLR itself
carries no error text, so ``provider.message`` comes from here."""


def signature(params: Mapping[str, str], secret: str, method: VonageMethod) -> str:
    """Vonage's ``sig`` of a request's parameters, lower-case hex.

    Every parameter but ``sig``, sorted by name, as ``&name=value`` with ``&`` and ``=`` in
    values replaced by ``_``; ``md5hash``: MD5 of that string followed by the secret; the
    other methods: HMAC of the string keyed with the secret (Vonage "Signing messages").
    """
    data = "".join(
        f"&{name}={params[name].replace('&', '_').replace('=', '_')}"
        for name in sorted(params)
        if name != "sig"
    )
    if method == "md5hash":
        # MD5 is Vonage's default "MD5 hash" scheme; the provider fixes it, not us.
        return hashlib.md5((data + secret).encode("utf-8")).hexdigest()  # noqa: S324
    return hmac.new(secret.encode("utf-8"), data.encode("utf-8"), method).hexdigest()


def verify(
    params: Mapping[str, str], secret: str, method: VonageMethod, now_ms: int, max_age_s: int
) -> None:
    """Check ``sig`` (compared case-insensitively) and that ``timestamp`` (Unix seconds) is
    at most ``max_age_s`` old. Raises :class:`Unauthenticated` otherwise."""
    given = params.get("sig", "")
    stamp = params.get("timestamp", "")
    if not given or not stamp.isdigit():
        raise Unauthenticated("the DLR is not signed (sig and timestamp are required)")
    age = now_ms // 1000 - int(stamp)
    if age > max_age_s or age < -FUTURE_SKEW_S:
        raise Unauthenticated("the DLR's timestamp is outside the accepted window")
    if not same(signature(params, secret, method), given.lower()):
        raise Unauthenticated("the DLR's sig does not match")


def params_of(cb: Callback) -> dict[str, str]:
    """The DLR's fields: the query string (GET), or a JSON or form body (POST).

    JSON values that are not text or numbers are kept as their JSON text (so a forged body
    fails the signature check, 401, rather than the parser). Raises :class:`InvalidBody`
    for a body that is neither JSON nor form data.
    """
    if cb.method == "GET" or not cb.body:
        pairs = list(cb.query)
    elif cb.content_type == "application/json":
        data = json_object(cb.body)
        return {name: _as_text(value) for name, value in data.items()}
    else:
        pairs = form_pairs(cb.body)
    out: dict[str, str] = {}
    for name, value in pairs:
        out.setdefault(name, value)
    return out


def _as_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return orjson.dumps(value).decode()


def receipt(params: Mapping[str, str], received_ms: int) -> Receipt | Skip:
    """Map one DLR. ``messageId`` and ``status`` are required; ``client-ref`` holding a UUID
    names our message; ``occurredAt`` is ``scts`` (UTC, minutes), else ``message-timestamp``,
    else the receive time (an unreadable time is never refused: ingest.providers.times).
    Raises :class:`InvalidBody` for a missing or malformed id, status or number."""
    raw_id = params.get("messageId") or params.get("message-id")
    pid = ids.vonage_id(require_id(raw_id, "messageId"))
    word = params.get("status", "").strip().lower()
    if not word:
        raise invalid("status", "required")
    status = lookup(STATUSES, word)
    if isinstance(status, Skip):
        return status
    code = params.get("err-code", "").strip() or "0"
    scts = params.get("scts", "").strip()
    occurred = read_time(scts, "scts") or read_time(
        params.get("message-timestamp"), "message-timestamp"
    )
    client_ref = params.get("client-ref", "")
    return Receipt(
        status=status,
        occurred_ms=occurred or received_ms,
        provider_status=word,
        code=code,
        message=ERRORS.get(code.lstrip("0")) if code.strip("0") else None,
        provider_id=pid,
        message_id=uuid_or_none(client_ref),
        phone=recipient_hint(params.get("msisdn"), "msisdn"),
        fingerprint={"id": pid, "status": word, "code": code, "scts": scts, "ref": client_ref},
    )


@dataclass(frozen=True, slots=True)
class VonageAdapter(SecretAdapter):
    """``GET|POST /webhooks/vonage``: SMS API DLRs, ``sig``-checked when ``secret`` is set."""

    method: VonageMethod = "md5hash"
    max_age_s: int = 25 * 3600
    name: str = NAME
    normalize_id = staticmethod(ids.vonage_id)

    def precheck(self, cb: Callback) -> None:
        """A GET DLR's parameters are all in the query: verify them whole (when configured).
        A POST's ``sig`` may be in the body, so it is checked by :meth:`handle`."""
        if self.secret is not None and cb.method == "GET":
            verify(params_of(cb), self.secret, self.method, cb.received_ms, self.max_age_s)

    def handle(self, cb: Callback) -> Mapped:
        """Verify ``sig`` (when configured), then map. See :func:`receipt`."""
        params = params_of(cb)
        if self.secret is not None:
            verify(params, self.secret, self.method, cb.received_ms, self.max_age_s)
        return collect([receipt(params, cb.received_ms)], NAME, FAMILY, cb.received_ms)


def from_settings(settings: IngestSettings) -> VonageAdapter:
    """The adapter configured with the Vonage signature secret, method and maximum age."""
    return VonageAdapter(
        secret_of(settings.vonage_signature_secret),
        settings.vonage_signature_method,
        settings.vonage_signature_max_age_s,
    )


SPEC = AdapterSpec(
    NAME,
    ("GET", "POST"),
    FAMILY,
    from_settings,
    summary="Vonage SMS delivery receipt",
    media_types=(JSON, FORM),
    credential=Credential("VonageSignature", {"type": "apiKey", "in": "query", "name": "sig"}),
)
"""This adapter's registry entry (``ingest.providers.registry``)."""
