"""Path and query parameters of the read API, checked as docs/design.md §3 decides.

Each parser returns the clean value or raises :class:`BadParameter` naming the parameter.
"""

from __future__ import annotations

import base64
import binascii
import time
from dataclasses import dataclass
from urllib.parse import unquote

from multidict import MultiMapping

from schemas.events import UUID_TEXT
from schemas.phone import is_e164
from schemas.timefmt import TimestampError, parse_iso_ms

DEFAULT_COUNT, MAX_COUNT = 50, 100
MAX_REFERENCE_KEY = 255


class BadParameter(ValueError):  # noqa: N818 - reads as the HTTP condition (400)
    """A path or query parameter is invalid; ``name`` is the parameter, the message says why."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


def single(query: MultiMapping[str], name: str) -> str | None:
    """The one value of a query parameter, or None; given twice it is ambiguous: an error."""
    values = query.getall(name, [])
    if len(values) > 1:
        raise BadParameter(name, "given more than once")
    return values[0] if values else None


def message_id(raw: str) -> str:
    """A message id: a UUID in any letter case; returned lowercase."""
    if UUID_TEXT.fullmatch(raw) is None:
        raise BadParameter("messageid", "must be a UUID")
    return raw.lower()


def phone_number(raw: str) -> str:
    """A phone number in E.164 syntax (``+``, 1-15 digits, first not 0); ``%2B`` is a ``+``."""
    if not is_e164(raw):
        raise BadParameter("phonenumber", "must be an E.164 number such as +1234567890")
    return raw


def reference_key(raw_segment: str) -> str:
    """A reference key from its raw (still percent-encoded) path segment.

    Decoded here, not by the router, so a key holding ``/`` (sent as ``%2F``) stays one key.
    Any UTF-8 text of 1-255 characters without control characters; ``+`` stays a ``+``.
    """
    try:
        key = unquote(raw_segment, errors="strict")
    except UnicodeDecodeError:
        raise BadParameter("referencekey", "must be UTF-8 text") from None
    if not key or len(key) > MAX_REFERENCE_KEY:
        raise BadParameter("referencekey", f"must be 1-{MAX_REFERENCE_KEY} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in key):
        raise BadParameter("referencekey", "must not contain control characters")
    return key


def count(raw: str | None) -> int:
    """``count``: default 50, above 100 silently 100, below 1 or not an integer: error."""
    if raw is None:
        return DEFAULT_COUNT
    if not raw.isascii() or not raw.isdigit():
        raise BadParameter("count", "must be an integer from 1; values above 100 mean 100")
    value = int(raw)
    if value < 1:
        raise BadParameter("count", "must be an integer from 1; values above 100 mean 100")
    return min(value, MAX_COUNT)


def send_date(raw: str | None) -> int:
    """``sendDate`` as epoch ms (exclusive upper bound); default: now. ISO 8601, no offset = UTC."""
    if raw is None:
        return int(time.time() * 1000)
    try:
        # Strictly before 10:00:00.5009 includes 10:00:00.500: round a sub-millisecond
        # bound up, since sends are kept to the millisecond.
        return parse_iso_ms(raw, round_up=True)
    except TimestampError:
        raise BadParameter(
            "sendDate", "must be an ISO 8601 date-time, e.g. 2026-12-31T23:59:59Z (encode + as %2B)"
        ) from None


@dataclass(frozen=True, slots=True)
class Cursor:
    """Position after the last message of a page: its send time (epoch ms) and id."""

    score: int
    message_id: str

    def encode(self) -> str:
        """Opaque text for the ``cursor`` query parameter of the ``rel="next"`` link."""
        return (
            base64.urlsafe_b64encode(f"{self.score}:{self.message_id}".encode())
            .decode()
            .rstrip("=")
        )


def cursor(raw: str | None) -> Cursor | None:
    """Decode the ``cursor`` query parameter of a ``rel="next"`` link."""
    if raw is None:
        return None
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        score, mid = text.split(":", 1)
        return Cursor(int(score), message_id(mid))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadParameter("cursor", "is not a cursor this API issued") from None
