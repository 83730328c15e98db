"""SMS segment count of a text (GSM 03.38 / 3GPP TS 23.038).

GSM-7: 160 septets in one SMS, 153 per part when concatenated; characters of the extension
table cost two septets and an escape pair is never split across parts. Any character outside
GSM-7 makes the whole message UCS-2: 70 UTF-16 units alone, 67 per part; characters outside
the BMP are two units and a surrogate pair is never split.
"""

from __future__ import annotations

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67


def is_gsm7(text: str) -> bool:
    """True when every character is in the GSM-7 basic or extension table."""
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def _count_parts(costs: list[int], single: int, part: int) -> int:
    """Pack units into parts of ``part`` without splitting a multi-unit character."""
    total = sum(costs)
    if total <= single:
        return 1
    parts, used = 1, 0
    for cost in costs:
        if used + cost > part:
            parts, used = parts + 1, 0
        used += cost
    return parts


def segment_count(text: str) -> int:
    """Number of SMS segments ``text`` needs (1 for the empty text)."""
    if is_gsm7(text):
        costs = [2 if ch in GSM7_EXTENSION else 1 for ch in text]
        return _count_parts(costs, GSM7_SINGLE, GSM7_PART)
    costs = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    return _count_parts(costs, UCS2_SINGLE, UCS2_PART)
