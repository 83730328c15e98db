"""Path and query parameters of the read API, checked as docs/design.md §3 decides.

Each parser returns the clean value or raises :class:`BadParameter` naming the parameter.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from urllib.parse import unquote

from multidict import MultiMapping

from schemas.events import UUID_TEXT
from schemas.phone import is_e164
from schemas.timefmt import TimestampError, parse_iso_ms

DEFAULT_COUNT, MAX_COUNT = 50, 100
COUNT_DIGITS = 100
"""``count`` has at most 100 digits: a longer number is a 400 before it is converted (Python
refuses to convert numbers of thousands of digits); shorter ones above 100 mean 100."""
CURSOR_RE = re.compile(
    r"(?P<score>[0-9]{1,15})_(?P<id>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
    r"[0-9a-fA-F]{4}-[0-9a-fA-F]{12})(?:\.(?P<tag>[0-9a-f]{12}))?"
)
"""A ``cursor``: ``<send time, epoch ms>_<message id>``, then ``.<scope tag>`` for keys of a
tenant or services (schemas.tenancy.Scope.tag); the schema's pattern in openapi.py."""
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
    if not raw.isascii() or not raw.isdigit() or len(raw) > COUNT_DIGITS:
        raise BadParameter(
            "count", "must be an integer from 1 (at most 100 digits); values above 100 mean 100"
        )
    value = int(raw)
    if value < 1:
        raise BadParameter("count", "must be an integer from 1; values above 100 mean 100")
    return min(value, MAX_COUNT)


def send_date(raw: str | None) -> int:
    """``sendDate`` as epoch ms (exclusive upper bound); default: now. ISO 8601, no offset = UTC.

    Any valid date-time of the years 0001-9999 is accepted (what ``format: date-time`` allows);
    outside 1970-6429 it is clamped, which lists the same messages."""
    if raw is None:
        return int(time.time() * 1000)
    try:
        # Strictly before 10:00:00.5009 includes 10:00:00.500: round a sub-millisecond
        # bound up, since sends are kept to the millisecond.
        return parse_iso_ms(raw, round_up=True, clamp=True)
    except TimestampError:
        raise BadParameter(
            "sendDate", "must be an ISO 8601 date-time, e.g. 2026-12-31T23:59:59Z (encode + as %2B)"
        ) from None


@dataclass(frozen=True, slots=True)
class Cursor:
    """Position after the last message of a page: its send time (epoch ms) and id."""

    score: int
    message_id: str
    tag: str = ""
    """The scope the cursor was made for (empty: the unrestricted scope)."""

    def encode(self) -> str:
        """The ``cursor`` query parameter of the ``rel="next"`` link: ``<score>_<id>``, and
        ``.<tag>`` when made for a scoped key."""
        base = f"{self.score}_{self.message_id}"
        return f"{base}.{self.tag}" if self.tag else base


def cursor(raw: str | None) -> Cursor | None:
    """Decode the ``cursor`` query parameter: ``<send time, epoch ms>_<message id>``.

    Every value of that form is accepted (it only says where the page starts), so what the
    OpenAPI pattern allows is what is accepted; anything else is a 400 naming ``cursor``.
    """
    if raw is None:
        return None
    match = CURSOR_RE.fullmatch(raw)
    if match is None:
        raise BadParameter("cursor", "is <send time in epoch ms>_<message id>, as rel=next gives")
    return Cursor(int(match["score"]), match["id"].lower(), match["tag"] or "")
