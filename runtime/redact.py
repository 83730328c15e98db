"""The last line of defence of the logs: no secret, full phone number or credential header in
any log line, at any level, whatever library wrote it (docs/operations.md, "Logs").

:class:`Redactor` is a logging filter on the one root handler. It rewrites each record's
formatted message, and its traceback, before any formatter sees them:

- the configured secrets (API keys, webhook secret, provider passwords and tokens:
  :func:`secrets_of`) become ``***``;
- credentials after ``Authorization``, ``X-Api-Key``, ``webhook-signature``,
  ``X-Twilio-Signature``, and ``Basic``/``Bearer`` tokens become ``***``;
- phone numbers (``+`` or ``%2B`` and 7-15 digits, or 10-15 digits standing alone) keep
  their first three and last two characters: ``+15***01``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from pydantic import BaseModel, SecretStr

_CREDENTIAL = re.compile(
    r"(?i)\b(authorization|x-api-key|api[_-]?keys?|webhook-signature|x-twilio-signature|"
    r"password|token|secret)(\"?'?\s*[:=]\s*[\"']?)((?:basic |bearer )?[^\s\"';}&]+)"
)
_SCHEME = re.compile(r"(?i)\b(basic|bearer)\s+(?![a-z]+\b)[A-Za-z0-9+/=._~-]{6,}")
_PHONE = re.compile(r"(?<![\w%+-])(?:\+|%2[Bb])\d{7,15}(?!\d)|(?<![\w.+-])\d{10,15}(?![\w-])")


def _mask_phone(match: re.Match[str]) -> str:
    text = match.group(0)
    return text[:3] + "***" + text[-2:]


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with secrets, credentials and phone numbers masked (module docstring)."""
    for secret in secrets:
        text = text.replace(secret, "***")
    text = _CREDENTIAL.sub(lambda m: m.group(1) + m.group(2) + "***", text)
    text = _SCHEME.sub(lambda m: m.group(1) + " ***", text)
    return _PHONE.sub(_mask_phone, text)


def secrets_of(settings: BaseModel) -> list[str]:
    """Every secret value of a settings object: its ``SecretStr`` fields and ``api_keys``."""
    out: list[str] = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            out.append(value.get_secret_value())
        elif name == "api_keys" and isinstance(value, list):
            out.extend(str(v) for v in value)
    return out


class Redactor(logging.Filter):
    """Masks each record's message and traceback in place (see :func:`redact`); keeps it."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        # Longest first, so a secret that contains another is masked whole; very short
        # values would mask ordinary words, and are refused as secrets at start-up anyway.
        self._secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite ``record`` so that it holds nothing to hide."""
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        if record.stack_info:
            text += "\n" + record.stack_info
            record.stack_info = None
        record.msg, record.args, record.exc_text = redact(text, self._secrets), None, None
        return True
