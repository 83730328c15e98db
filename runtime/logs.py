"""Structured logging: JSON lines with a request id; phone numbers masked, secrets never logged."""

from __future__ import annotations

import contextvars
import logging
import re
import sys
from collections.abc import Iterable

from aiohttp.http_exceptions import HttpProcessingError
from pythonjsonlogger.json import JsonFormatter

from runtime.redact import Redactor

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
"""The id of the HTTP request being served (``X-Request-Id``, or one we made)."""

_PHONE_IN_PATH = re.compile(r"(/phonenumber/(?:%2[Bb]|\+)?[^/?]{0,3})[^/?]*?([^/?]{2})(?=[/?]|$)")


def mask_digits(text: str) -> str:
    """Mask the phone number of a ``/phonenumber/...`` path as ``/phonenumber/+12***90``, so
    logs never hold a full number (docs/pitfalls.md: baileys-api#333); other segments stay as sent.
    """
    return _PHONE_IN_PATH.sub(lambda m: m.group(1) + "***" + m.group(2), text)


class _MalformedRequestFilter(logging.Filter):
    """aiohttp logs a request it cannot parse at ERROR, traceback and raw request line
    included: that line may hold a phone number or forged text, and anyone can send such
    requests. Keep one masked WARNING line instead (the client got its 400 already)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite aiohttp's record of an unparsable request; keep every record."""
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg, record.args = (
                "rejected a malformed HTTP request: %s",
                (exc.__class__.__name__,),
            )
            record.exc_info = record.exc_text = None
        return True


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        """Add the current request id unless the record brings its own."""
        if not hasattr(record, "request_id"):  # the access log passes its request's id
            record.request_id = request_id.get()
        return True


def configure(level: str = "INFO", fmt: str = "json", secrets: Iterable[str] = ()) -> None:
    """Configure the root logger once per process: JSON (default) or plain text to stderr;
    every record is masked first (``secrets``, credentials, phone numbers: runtime.redact)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(Redactor(secrets))
    if fmt == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                datefmt="%Y-%m-%dT%H:%M:%S%z",
            )
        )
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("aiohttp.server").addFilter(_MalformedRequestFilter())
