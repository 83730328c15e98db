"""Builders of provider callbacks for the adapter tests: requests and their signatures.

Signatures are made here independently of ``ingest.providers`` (from the providers' own
documentation, or with their SDKs where one is installed), so a test of a check is never
the check compared with itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt
from multidict import MultiDict
from twilio.request_validator import RequestValidator

from ingest.providers.common import Callback

TWILIO_TOKEN = "twilio-auth-token-" + "0" * 14
VONAGE_SECRET = "vonage-signature-secret-for-tests-0123456789"
"""At least 32 bytes: PyJWT warns about shorter HS256 keys (and warnings fail the tests)."""
PUBLIC = "https://hooks.example.test/msgstatus"
SMPP_TOKEN = "smpp-token-0123456789"
INFOBIP_USER, INFOBIP_PASSWORD = "infobip-user", "infobip-password-0001"
SINCH_USER, SINCH_PASSWORD = "sinch-user", "sinch-password-0001"

PROVIDER_SETTINGS: dict[str, Any] = {
    "public_base_url": PUBLIC,
    "twilio_auth_token": TWILIO_TOKEN,
    "vonage_signature_secret": VONAGE_SECRET,
    "vonage_signature_method": "sha256",
    "infobip_webhook_username": INFOBIP_USER,
    "infobip_webhook_password": INFOBIP_PASSWORD,
    "sinch_webhook_username": SINCH_USER,
    "sinch_webhook_password": SINCH_PASSWORD,
    "smpp_webhook_token": SMPP_TOKEN,
    "smpp_timezone": "Europe/Berlin",
    "smpp_receipt_id_base": "dec",
    "smpp_submit_id_base": "hex",
}
"""Ingest settings with every adapter's credentials, as a real deployment would have them:
Twilio behind a proxy URL with a path prefix, Vonage HMAC-SHA256, SMPP ids decimal in
receipts and hex on submit, receipt dates in Europe/Berlin (``Stack.start(**...)``)."""


def basic_header(user: str, password: str) -> dict[str, str]:
    """An ``Authorization: Basic`` header (Infobip, Sinch)."""
    return {"Authorization": basic(user, password)}


def callback(
    body: bytes = b"",
    *,
    method: str = "POST",
    url: str = "https://hooks.example.test/webhooks/test",
    content_type: str = "application/json",
    headers: Mapping[str, str] | None = None,
    received_ms: int = 1_736_944_300_000,
) -> Callback:
    """A :class:`Callback` as the routes would build it (query taken from ``url``)."""
    from urllib.parse import parse_qsl  # noqa: PLC0415 - local helper import

    return Callback(
        method=method,
        url=url,
        query=tuple(parse_qsl(urlsplit(url).query, keep_blank_values=True)),
        headers={k.lower(): v for k, v in (headers or {}).items()},
        body=body,
        content_type=content_type,
        received_ms=received_ms,
    )


def new_sid(prefix: str = "SM") -> str:
    """A fresh, invented Twilio message SID (``SM`` + 32 lower-case hex digits)."""
    return prefix + uuid.uuid4().hex


def twilio_form(params: Iterable[tuple[str, str]]) -> bytes:
    """A form-encoded Twilio body (blank values kept)."""
    return urlencode(list(params)).encode()


def twilio_signature(url: str, params: Iterable[tuple[str, str]], token: str = TWILIO_TOKEN) -> str:
    """X-Twilio-Signature as the official twilio SDK computes it (repeated names supported)."""
    return str(RequestValidator(token).compute_signature(url, MultiDict(list(params))))


def twilio_signature_by_hand(url: str, params: Mapping[str, str], token: str) -> str:
    """X-Twilio-Signature from Twilio's "Webhooks security" steps, written out by hand."""
    data = url + "".join(name + params[name] for name in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def vonage_sig(
    params: Mapping[str, str], secret: str = VONAGE_SECRET, method: str = "md5hash"
) -> str:
    """Vonage SMS ``sig`` from the "Signing messages" guide: sorted ``&k=v`` pairs (``&``/``=``
    in values become ``_``), then md5(string + secret), or hex HMAC keyed with the secret."""
    data = "".join(
        "&" + k + "=" + params[k].replace("&", "_").replace("=", "_")
        for k in sorted(params)
        if k != "sig"
    )
    if method == "md5hash":
        return hashlib.md5((data + secret).encode()).hexdigest()  # noqa: S324 - Vonage's scheme
    return hmac.new(secret.encode(), data.encode(), method).hexdigest()


def vonage_signed(
    params: Mapping[str, str],
    secret: str = VONAGE_SECRET,
    method: str = "md5hash",
    *,
    now: int | None = None,
) -> dict[str, str]:
    """``params`` with ``timestamp`` and ``nonce`` added and signed (``sig`` upper case, as the
    spec's example shows)."""
    out = dict(params)
    out["timestamp"] = str(int(time.time()) if now is None else now)
    out["nonce"] = str(uuid.uuid4())
    out["sig"] = vonage_sig(out, secret, method).upper()
    return out


def vonage_jwt(
    body: bytes, secret: str = VONAGE_SECRET, *, iat: int | None = None, **claims: Any
) -> str:
    """A Messages API webhook JWT: HS256 with the signature secret, ``payload_hash`` =
    hex SHA-256 of the body (Vonage "Signed webhooks")."""
    payload: dict[str, Any] = {
        "iat": int(time.time()) if iat is None else iat,
        "jti": str(uuid.uuid4()),
        "iss": "Vonage",
        "payload_hash": hashlib.sha256(body).hexdigest(),
        "api_key": "abcd1234",
        "application_id": str(uuid.uuid4()),
    }
    payload.update(claims)
    return jwt.encode(payload, secret, algorithm="HS256")


def basic(user: str, password: str) -> str:
    """An ``Authorization: Basic`` header value (RFC 7617)."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def new_phone() -> str:
    """A fresh invented number ``1555`` + 7 random digits, without ``+`` (as Vonage, Infobip
    and Sinch write it); the random digits keep tests apart."""
    return "1555" + str(uuid.uuid4().int)[:7]
