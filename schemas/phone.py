"""Phone numbers: E.164 syntax check, normalisation of provider formats, and masking for logs."""

from __future__ import annotations

import re

E164 = re.compile(r"\+[1-9][0-9]{0,14}")
"""docs/design.md §3: ``+``, then 1-15 digits, the first not 0. Syntax only, no numbering plan."""

_SEPARATORS = re.compile(r"[\s().\-]")


class PhoneNumberError(ValueError):
    """Raised when a phone number cannot be read as an E.164 number."""


def is_e164(value: str) -> bool:
    """Return True when ``value`` is E.164 syntax (``+`` and 1-15 digits, first not 0)."""
    return E164.fullmatch(value) is not None


def normalize_e164(value: str) -> str:
    """Normalise a provider's phone number to E.164 (``+`` and digits).

    Accepts the forms providers send: ``+15550100001``, ``0015550100001`` (international
    ``00`` prefix), ``15550100001`` (Vonage ``msisdn``, Sinch ``recipient``: international
    without ``+``), with spaces, dots, dashes or parentheses as separators.
    Raises :class:`PhoneNumberError` when the result is not E.164.
    """
    compact = _SEPARATORS.sub("", value)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    elif not compact.startswith("+"):
        compact = "+" + compact
    if not is_e164(compact):
        raise PhoneNumberError(f"not an E.164 phone number: {mask_phone(value)}")
    return compact


def mask_phone(value: str) -> str:
    """Mask a phone number for logs: keep the first 3 and last 2 characters (``+12*******90``)."""
    if len(value) <= 5:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 5) + value[-2:]
