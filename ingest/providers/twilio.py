"""Twilio Programmable Messaging status callbacks (``POST /webhooks/twilio``) -> canonical events.

Source: docs/providers.md section 1 (Twilio docs "Track outbound message status", "Webhooks
security"; twilio-python ``request_validator.py``). The mapping table and its decisions are
written out in the project's docs/providers.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from ingest.errors import Unauthenticated
from ingest.providers import ids
from ingest.providers.auth import SecretAdapter, same
from ingest.providers.common import (
    FORM,
    JSON,
    NO_EVENT,
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
from ingest.providers.fields import form_pairs, invalid, json_object, recipient_hint, require_id
from schemas.status import Status

if TYPE_CHECKING:
    from ingest.settings import IngestSettings

NAME = "twilio"
FAMILY = "twilio"
"""The ``provider.name`` of this adapter's events."""
SHA1_BYTES = 20

STATUSES: dict[str, Status | Skip] = {
    "accepted": NO_EVENT,
    "scheduled": NO_EVENT,
    "queued": NO_EVENT,
    "sending": NO_EVENT,
    "sent": Status.SENT,
    "delivered": Status.DELIVERED,
    "undelivered": Status.UNDELIVERED,
    "failed": Status.REJECTED,
    "canceled": Status.REJECTED,
    "read": Status.READ,
    "receiving": NO_EVENT,
    "received": NO_EVENT,
    "partially_delivered": NO_EVENT,
}
"""``MessageStatus`` -> canonical status; NO_EVENT = acknowledged without an event (states before
hand-off carry no message identity, inbound states are not ours, partially_delivered is
deprecated). Decisions: docs/providers.md, Twilio table."""


def signature(token: str, url: str, params: Sequence[tuple[str, str]]) -> str:
    """Twilio's ``X-Twilio-Signature`` of a request: base64 HMAC-SHA1, keyed with the account
    auth token, of the URL followed by each parameter's name and value, sorted by name (the
    values of a repeated name sorted and de-duplicated, as twilio-python does)."""
    grouped: dict[str, set[str]] = {}
    for name, value in params:
        grouped.setdefault(name, set()).add(value)
    data = url + "".join(
        name + value for name in sorted(grouped) for value in sorted(grouped[name])
    )
    digest = hmac.new(token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def url_variants(url: str) -> list[str]:
    """The URL as given, and with its port removed or the scheme's default port added:
    Twilio's signing "is inconsistent" about ports (twilio-python ``validate``)."""
    parts = urlsplit(url)
    if parts.port is not None:
        bare = parts.netloc.rsplit(":", 1)[0]
        return [url, urlunsplit(parts._replace(netloc=bare))]
    default = "443" if parts.scheme == "https" else "80"
    return [url, urlunsplit(parts._replace(netloc=f"{parts.netloc}:{default}"))]


def verify(cb: Callback, token: str, form: Sequence[tuple[str, str]] | None) -> None:
    """Check ``X-Twilio-Signature`` of a form callback (``form`` = its pairs) or of a JSON one
    (``form`` None: the URL carries ``bodySHA256``, the hex SHA-256 of the raw body, and the
    URL alone is signed). Raises :class:`Unauthenticated` when it does not match."""
    given = cb.header("x-twilio-signature")
    if not given:
        raise Unauthenticated("X-Twilio-Signature is missing")
    signed: Sequence[tuple[str, str]] = form or ()
    if form is None:
        query = dict(parse_qsl(urlsplit(cb.url).query, keep_blank_values=True))
        body_hash = query.get("bodySHA256")
        if body_hash is None:
            raise Unauthenticated("a JSON callback needs bodySHA256 in its URL")
        if not same(hashlib.sha256(cb.body).hexdigest(), body_hash.lower()):
            raise Unauthenticated("bodySHA256 does not match the body")
    if not any(same(signature(token, url, signed), given) for url in url_variants(cb.url)):
        raise Unauthenticated("X-Twilio-Signature does not match")


def _scalar(value: object) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _first(pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in pairs:
        out.setdefault(name, value)
    return out


def receipt(params: Mapping[str, str], received_ms: int) -> Receipt | Skip:
    """Map one status callback's parameters.

    ``MessageSid`` (or legacy ``SmsSid``) and ``MessageStatus`` (or ``SmsStatus``) are
    required; ``EventType=READ`` (RCS/WhatsApp) is a READ. Twilio sends no event time, so
    ``occurredAt`` is the receive time and the event id leaves it out (a retry is the same
    event). Raises :class:`InvalidBody` for a missing or malformed field.
    """
    sid = ids.twilio_sid(require_id(params.get("MessageSid") or params.get("SmsSid"), "MessageSid"))
    word = (params.get("MessageStatus") or params.get("SmsStatus") or "").strip().lower()
    if not word:
        raise invalid("MessageStatus", "required")
    event_type = (params.get("EventType") or "").strip().upper()
    status = Status.READ if event_type == "READ" else lookup(STATUSES, word)
    if isinstance(status, Skip):
        return status
    code = (params.get("ErrorCode") or "").strip() or "0"
    return Receipt(
        status=status,
        occurred_ms=received_ms,
        provider_status=word,
        code=code,
        message=(params.get("ErrorMessage") or "").strip() or None,
        provider_id=sid,
        phone=recipient_hint(params.get("To"), "To"),
        fingerprint={
            "sid": sid,
            "status": word,
            "eventType": event_type,
            "code": code,
            "dlrDone": params.get("RawDlrDoneDate", ""),
        },
    )


@dataclass(frozen=True, slots=True)
class TwilioAdapter(SecretAdapter):
    """``POST /webhooks/twilio``: form-encoded (or JSON with ``bodySHA256``) status callbacks,
    checked with the account auth token when ``secret`` is set."""

    name: str = NAME
    normalize_id = staticmethod(ids.twilio_sid)

    def precheck(self, cb: Callback) -> None:
        """Before the body: ``X-Twilio-Signature`` present and a base64 SHA-1 digest, and a
        JSON callback's URL carrying ``bodySHA256`` (when configured)."""
        if self.secret is None:
            return
        given = cb.header("x-twilio-signature")
        if not given:
            raise Unauthenticated("X-Twilio-Signature is missing")
        try:
            digest = base64.b64decode(given, validate=True)
        except binascii.Error:
            digest = b""
        if len(digest) != SHA1_BYTES:
            raise Unauthenticated("X-Twilio-Signature is not a base64 HMAC-SHA1")
        if cb.content_type == "application/json" and "bodySHA256=" not in cb.url:
            raise Unauthenticated("a JSON callback needs bodySHA256 in its URL")

    def handle(self, cb: Callback) -> Mapped:
        """Verify the signature (when configured), then map. See :func:`receipt`."""
        if cb.content_type == "application/json":
            data = json_object(cb.body)
            params = {k: str(v) for k, v in data.items() if _scalar(v)}
            form = None
        else:
            form = form_pairs(cb.body)
            params = _first(form)
        if self.secret is not None:
            verify(cb, self.secret, form)
        return collect([receipt(params, cb.received_ms)], NAME, FAMILY, cb.received_ms)


def from_settings(settings: IngestSettings) -> TwilioAdapter:
    """The adapter configured with ``MSGSTATUS_TWILIO_AUTH_TOKEN``."""
    return TwilioAdapter(secret_of(settings.twilio_auth_token))


SPEC = AdapterSpec(
    NAME,
    ("POST",),
    FAMILY,
    from_settings,
    summary="Twilio status callback",
    media_types=(FORM, JSON),
    credential=Credential(
        "TwilioSignature", {"type": "apiKey", "in": "header", "name": "X-Twilio-Signature"}
    ),
)
"""This adapter's registry entry (``ingest.providers.registry``)."""
