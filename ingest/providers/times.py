"""Provider date fields read leniently: every form the providers and common gateways write.

A receipt is never refused for its time (a refused receipt is a status lost for good: the
providers retry only 5xx, 429 and timeouts). A time that still cannot be read is logged as a
warning and the caller falls back to the receive time. Forms read (docs/providers.md, "Times"):

- ISO-like: ``YYYY-MM-DD``, then ``T`` or a space, ``hh:mm[:ss[.fff]]``, then optionally a
  space and an offset ``Z``, ``UTC``, ``GMT``, ``+hh``, ``+hhmm`` or ``+hh:mm``; no offset
  means the field's zone (UTC unless the adapter is configured otherwise). A zero offset
  whose ``+`` became a space in a query string that was not encoded (``10:05:00  0000``)
  is UTC too; a non-zero one without its sign is unreadable. Vonage writes
  ``2026-08-01 10:05:00 +0000``, Infobip ``2026-08-01T10:05:00.000+0000``.
- compact digits: 10 ``YYMMDDhhmm`` and 12 ``YYMMDDhhmmss`` (SMPP v3.4 Appendix B receipts,
  Vonage ``scts``), 14 ``YYYYMMDDhhmmss`` (gateways writing 4-digit years); two-digit years
  are 2000-2099.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo

from schemas.timefmt import MAX_MS

log = logging.getLogger(__name__)

_ISO = re.compile(
    r"(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})[Tt ](?P<h>\d{2}):(?P<mi>\d{2})"
    r"(?::(?P<s>\d{2})(?:[.,](?P<f>\d{1,9}))?)?"
    r"(?: ?(?P<tz>[Zz]|UTC|GMT|[+-]\d{2}(?::?\d{2})?)| +(?P<zero>00:?00))?"
)


class ProviderTimeError(ValueError):
    """A provider time in none of the forms of the module docstring, or not a real instant."""


def _offset(tz: str | None, zone: tzinfo) -> tzinfo:
    if not tz:
        return zone
    if tz in ("Z", "z", "UTC", "GMT"):
        return UTC
    sign = 1 if tz[0] == "+" else -1
    digits = tz[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    if hours > 23 or minutes > 59:
        raise ProviderTimeError("offset out of range")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _compact(text: str) -> list[int]:
    if len(text) == 14:
        year, rest = int(text[:4]), text[4:]
    elif len(text) in (10, 12):
        year, rest = 2000 + int(text[:2]), text[2:]
    else:
        raise ProviderTimeError("10, 12 or 14 digits expected")
    parts = [year] + [int(rest[i : i + 2]) for i in range(0, len(rest), 2)]
    return parts + [0] * (6 - len(parts))


def parse_provider_time(text: str, zone: tzinfo = UTC) -> int:
    """Epoch ms (UTC) of a provider time in any form of the module docstring.

    ``zone`` is the zone of times written without an offset. Raises
    :class:`ProviderTimeError` for anything else, and for instants outside 1970-6429.
    """
    value = text.strip()
    millis = 0
    if value.isdigit():
        parts = _compact(value)
        tz: tzinfo = zone
    else:
        match = _ISO.fullmatch(value)
        if match is None:
            raise ProviderTimeError("not a date-time form a provider writes")
        parts = [int(match[k] or 0) for k in ("y", "mo", "d", "h", "mi", "s")]
        millis = int(((match["f"] or "") + "000")[:3])
        tz = UTC if match["zero"] else _offset(match["tz"], zone)
    try:
        year, month, day, hour, minute, second = parts
        local = datetime(year, month, day, hour, minute, second, tzinfo=tz)
        ms = int(local.timestamp()) * 1000 + millis
    except (ValueError, OverflowError) as exc:
        raise ProviderTimeError(f"not a valid date-time: {exc}") from None
    if not 0 <= ms < MAX_MS:
        raise ProviderTimeError("outside the years 1970-6429")
    return ms


def read_time(value: str | None, name: str, zone: tzinfo = UTC) -> int | None:
    """A provider time field as epoch ms, or None when absent or unreadable.

    Unreadable values are logged (warning, ``name`` and the first 40 characters) so the
    caller's fallback (another field, then the receive time) is visible; never raises.
    """
    if value is None or not value.strip():
        return None
    try:
        return parse_provider_time(value, zone)
    except ProviderTimeError as exc:
        log.warning(
            "unreadable provider time %s=%r (%s): the receive time is used", name, value[:40], exc
        )
        return None
