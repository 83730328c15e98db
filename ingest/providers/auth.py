"""Credential checks the signature-less providers use: HTTP Basic (Infobip, Sinch) and a
shared token in the URL (SMPP gateways). All comparisons run in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass

from ingest.errors import Unauthenticated
from ingest.providers.common import Callback


def same(given: str, expected: str) -> bool:
    """Constant-time equality of two strings (UTF-8 bytes, so any text is accepted)."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def check_basic(header: str | None, username: str, password: str) -> None:
    """Check an ``Authorization: Basic`` header (RFC 7617) against one user and password.

    Raises :class:`Unauthenticated` when it is missing, malformed or wrong; the message never
    says which part was wrong.
    """
    if header is None:
        raise Unauthenticated("HTTP Basic credentials required")
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        raise Unauthenticated("HTTP Basic credentials required")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthenticated("malformed HTTP Basic credentials") from None
    user, sep, secret = decoded.partition(":")
    # Both comparisons always run, so the time does not tell which one failed.
    ok_user = same(user, username)
    ok_password = same(secret, password)
    if not (sep and ok_user and ok_password):
        raise Unauthenticated("wrong HTTP Basic credentials")


def check_token(given: str | None, token: str) -> None:
    """Check a shared token (the SMPP adapter's ``token`` query parameter).

    Raises :class:`Unauthenticated` when it is missing or wrong.
    """
    if not given:
        raise Unauthenticated("the token query parameter is required")
    if not same(given, token):
        raise Unauthenticated("wrong token")


@dataclass(frozen=True, slots=True)
class BasicAuthAdapter:
    """The credential part of an adapter behind HTTP Basic (Infobip, Sinch): configured when
    both ``username`` and ``password`` are set; all of it is in the headers."""

    username: str | None
    password: str | None

    @property
    def configured(self) -> bool:
        """True when both the user name and the password are set."""
        return self.username is not None and self.password is not None

    def precheck(self, cb: Callback) -> None:
        """Check the Basic credentials (when configured); raises :class:`Unauthenticated`."""
        if self.username is not None and self.password is not None:
            check_basic(cb.header("authorization"), self.username, self.password)


@dataclass(frozen=True, slots=True)
class SecretAdapter:
    """The credential part of an adapter checked with one secret (Twilio's auth token, the
    Vonage signature secret, the SMPP gateway's token): configured when it is set."""

    secret: str | None

    @property
    def configured(self) -> bool:
        """True when the secret is set."""
        return self.secret is not None
