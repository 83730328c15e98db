"""Timestamps: ISO 8601 parsing to epoch milliseconds (UTC) and the read API's output format."""

from __future__ import annotations

import functools
import re
import time
from datetime import UTC, datetime, timedelta, timezone

_ISO = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[Tt ](?P<h>\d{2}):(?P<m>\d{2})"
    r"(?::(?P<s>\d{2})(?:[.,](?P<f>\d{1,9}))?)?"
    r"(?P<tz>[Zz]|[+-]\d{2}(?::?\d{2})?)?"
)


MAX_MS = 2**47
"""Epoch milliseconds we accept, exclusive (year 6429): far beyond any delivery receipt,
and well within a double's exact integers (sorted-set scores, docs/pitfalls.md: redis#1071)."""


class TimestampError(ValueError):
    """Raised when a timestamp is not ISO 8601 (date, time, optional fraction and offset)."""


def parse_iso_ms(text: str, *, round_up: bool = False, clamp: bool = False) -> int:
    """Parse an ISO 8601 date-time into epoch milliseconds (UTC).

    Accepts ``Z`` or a ``+hh:mm``/``+hhmm``/``+hh`` offset; no offset means UTC (docs/design.md §3).
    Fractions beyond milliseconds are truncated, or rounded up with ``round_up``. Raises
    :class:`TimestampError` otherwise, including for an offset whose ``+`` arrived as a space
    (``...T10:00:00 01:00``), and outside 1970 to 6429; with ``clamp`` a valid date-time
    outside that range is clamped to it instead (a filter bound such as ``sendDate``).
    """
    match = _ISO.fullmatch(text.strip()) if text == text.strip() else None
    if match is None:
        raise TimestampError(f"not an ISO 8601 date-time: {text!r}")
    try:
        base = datetime.fromisoformat(
            f"{match['date']}T{match['h']}:{match['m']}:{match['s'] or '00'}"
        )
    except ValueError as exc:
        raise TimestampError(f"not a valid date-time: {text!r}") from exc
    frac = match["f"] or ""
    millis = int((frac + "000")[:3]) if frac else 0
    if round_up and frac[3:].strip("0"):
        millis += 1
    tz = match["tz"]
    offset = timedelta(0)
    if tz and tz not in ("Z", "z"):
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
        if hours > 23 or minutes > 59:
            raise TimestampError(f"offset out of range: {text!r}")
        offset = sign * timedelta(hours=hours, minutes=minutes)
    try:
        aware = base.replace(tzinfo=timezone(offset))
        ms = int(aware.timestamp()) * 1000 + millis
    except (OverflowError, ValueError) as exc:
        if clamp:
            return 0 if base.year < 1970 else MAX_MS - 1
        raise TimestampError(f"out of range: {text!r}") from exc
    if clamp:
        return min(max(ms, 0), MAX_MS - 1)
    if not 0 <= ms < MAX_MS:
        raise TimestampError(f"out of range (1970 to 6429): {text!r}")
    return ms


def format_seconds(ms: int) -> str:
    """Format epoch milliseconds as ``YYYY-MM-DDTHH:MM:SSZ`` in UTC (docs/design.md §3).

    Milliseconds are dropped (floor), as the seed's documents carry whole seconds.
    """
    return _format_second(ms // 1000)


@functools.lru_cache(maxsize=4096)
def _format_second(second: int) -> str:
    # Cached: a batch's events cluster within a few seconds, each formatted several times.
    t = time.gmtime(second)  # cheaper than datetime.strftime on the projector's hot path
    date = f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}"
    return f"{date}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}Z"


def format_ms(ms: int) -> str:
    """Format epoch milliseconds as ``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC (event log format)."""
    dt = datetime.fromtimestamp(ms // 1000, tz=UTC)
    return f"{dt.strftime('%Y-%m-%dT%H:%M:%S')}.{ms % 1000:03d}Z"
