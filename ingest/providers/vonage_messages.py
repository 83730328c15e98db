"""Vonage Messages API status callbacks (``POST /webhooks/vonage-messages``) -> canonical events.

Source: docs/providers.md section 2b (Vonage Messages OpenAPI v1.20; "Messages API status
callbacks"; "Signed webhooks"). The mapping table and its decisions are written out in the
project's docs/providers.md.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jwt

from ingest.errors import InvalidBody, Unauthenticated, UnsignedRetry
from ingest.providers import ids, vonage
from ingest.providers.auth import SecretAdapter, same
from ingest.providers.common import (
    JSON,
    AdapterSpec,
    Callback,
    Credential,
    Mapped,
    Receipt,
    Skip,
    collect,
    invalid_entry,
    lookup,
    secret_of,
)
from ingest.providers.fields import (
    invalid,
    json_value,
    recipient_hint,
    require_id,
    text_field,
    uuid_or_none,
)
from ingest.providers.times import read_time
from schemas.status import Status

if TYPE_CHECKING:
    from ingest.settings import IngestSettings

NAME = "vonage-messages"
FAMILY = vonage.FAMILY
"""The ``provider.name`` of this adapter's events."""
FUTURE_SKEW_S = 300
PHONE_CHANNELS = frozenset({"sms", "mms", "rcs", "whatsapp", "viber_service"})
"""Channels whose ``to`` is a phone number (Messenger's is a page-scoped id)."""

STATUSES: dict[str, Status | Skip] = {
    "submitted": Status.SENT,
    "delivered": Status.DELIVERED,
    "read": Status.READ,
    "rejected": Status.REJECTED,
    "undeliverable": Status.REJECTED,
}
"""``status`` -> canonical status; a ``rejected`` whose error says the TTL expired is
UNDELIVERED (:func:`_expired`). Decisions: docs/providers.md, Vonage Messages table."""


def verify(
    authorization: str | None, body: bytes, secret: str, now_ms: int, max_age_s: int
) -> None:
    """Check the ``Authorization: Bearer <JWT>`` of a callback (Vonage "Signed webhooks").

    The JWT is HS256 with the signature secret (whatever the dashboard's signature method);
    its ``payload_hash`` claim must be the hex SHA-256 of the raw body and its ``iat`` at
    most ``max_age_s`` old. Raises :class:`UnsignedRetry` when there is no token (Vonage
    retries after a 5xx, signed) and :class:`Unauthenticated` when it does not verify.
    """
    claims = verify_token(authorization, secret, now_ms, max_age_s)
    payload_hash = claims["payload_hash"]
    if not isinstance(payload_hash, str) or not same(
        hashlib.sha256(body).hexdigest(), payload_hash.lower()
    ):
        raise Unauthenticated("payload_hash does not match the body")


def verify_token(
    authorization: str | None, secret: str, now_ms: int, max_age_s: int
) -> dict[str, Any]:
    """The claims of the callback's JWT once its signature and ``iat`` verify (everything but
    the body hash, so it runs before the body is read). Raises as :func:`verify`."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnsignedRetry("the callback carries no signed JWT")
    try:
        claims = jwt.decode(
            token.strip(),
            secret,
            algorithms=["HS256"],
            options={"require": ["iat", "payload_hash"], "verify_aud": False},
            leeway=FUTURE_SKEW_S,
        )
    except jwt.PyJWTError as exc:
        raise Unauthenticated(f"the JWT does not verify: {exc.__class__.__name__}") from None
    iat = claims["iat"]
    age = now_ms // 1000 - int(iat) if isinstance(iat, int | float) else None
    if age is None or age > max_age_s or age < -FUTURE_SKEW_S:
        raise Unauthenticated("the JWT's iat is outside the accepted window")
    return claims


def _expired(error: dict[str, Any]) -> bool:
    """True when a rejection's error says the message's TTL ran out before delivery."""
    words = " ".join(str(error.get(k, "")) for k in ("title", "detail")).lower()
    return "expired" in words or "ttl" in words


def receipt(data: dict[str, Any], received_ms: int, where: str = "") -> Receipt | Skip:
    """Map one status callback. ``message_uuid`` and ``status`` are required; ``client_ref``
    holding a UUID names our message; ``occurredAt`` is ``timestamp`` (else the receive time);
    ``provider.code`` is ``error.title`` (the numeric error code), ``provider.message``
    ``error.detail``. Raises :class:`InvalidBody` for a missing or malformed field (named
    after ``where``, the entry's place in a batched body: ``[2].``)."""
    pid = ids.vonage_id(require_id(text_field(data, "message_uuid", where), f"{where}message_uuid"))
    word = (text_field(data, "status", where) or "").strip().lower()
    if not word:
        raise invalid(f"{where}status", "required")
    status = lookup(STATUSES, word)
    if isinstance(status, Skip):
        return status
    error = data.get("error") or {}
    if not isinstance(error, dict):
        raise invalid(f"{where}error", "must be an object")
    if status is Status.REJECTED and word == "rejected" and _expired(error):
        status = Status.UNDELIVERED
    code = text_field(error, "title", f"{where}error.") or "0"
    channel = (text_field(data, "channel", where) or "").lower()
    to = text_field(data, "to", where) if channel in PHONE_CHANNELS else None
    stamp = text_field(data, "timestamp", where)
    client_ref = text_field(data, "client_ref", where) or ""
    return Receipt(
        status=status,
        occurred_ms=read_time(stamp, "timestamp") or received_ms,
        provider_status=word,
        code=code,
        message=text_field(error, "detail", f"{where}error."),
        provider_id=pid,
        message_id=uuid_or_none(client_ref),
        phone=recipient_hint(to, f"{where}to"),
        fingerprint={"id": pid, "status": word, "at": stamp, "code": code, "ref": client_ref},
    )


@dataclass(frozen=True, slots=True)
class VonageMessagesAdapter(SecretAdapter):
    """``POST /webhooks/vonage-messages``: JSON status callbacks, JWT-checked when ``secret``
    (``MSGSTATUS_VONAGE_SIGNATURE_SECRET``) is set."""

    max_age_s: int = 25 * 3600
    name: str = NAME
    normalize_id = staticmethod(ids.vonage_id)

    def precheck(self, cb: Callback) -> None:
        """The JWT (when configured) verifies but for its body hash: it is in the headers."""
        if self.secret is not None:
            verify_token(cb.header("authorization"), self.secret, cb.received_ms, self.max_age_s)

    def handle(self, cb: Callback) -> Mapped:
        """Verify the JWT (when configured), then map. See :func:`receipt`."""
        if self.secret is not None:
            verify(cb.header("authorization"), cb.body, self.secret, cb.received_ms, self.max_age_s)
        data = json_value(cb.body)
        if isinstance(data, dict):
            return collect([receipt(data, cb.received_ms)], NAME, FAMILY, cb.received_ms)
        if not isinstance(data, list) or not data:
            raise invalid("body", "expected a status object or an array of them")
        results: list[Receipt | Skip] = []
        for index, item in enumerate(data):
            try:
                if not isinstance(item, dict):
                    raise invalid(f"[{index}]", "a status is a JSON object")
                results.append(receipt(item, cb.received_ms, f"[{index}]."))
            except InvalidBody as exc:
                results.append(invalid_entry(exc))
        return collect(results, NAME, FAMILY, cb.received_ms)


def from_settings(settings: IngestSettings) -> VonageMessagesAdapter:
    """The adapter configured with the Vonage signature secret and maximum age."""
    return VonageMessagesAdapter(
        secret_of(settings.vonage_signature_secret), settings.vonage_signature_max_age_s
    )


SPEC = AdapterSpec(
    NAME,
    ("POST",),
    FAMILY,
    from_settings,
    summary="Vonage Messages status",
    media_types=(JSON,),
    credential=Credential(
        "VonageJwt", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}, optional=True
    ),
)
"""This adapter's registry entry (``ingest.providers.registry``)."""
