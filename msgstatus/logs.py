"""Structured logging: JSON lines with a request id; phone numbers masked, secrets never logged."""

from __future__ import annotations

import contextvars
import logging
import re
import sys

from pythonjsonlogger.json import JsonFormatter

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
"""The id of the HTTP request being served (``X-Request-Id``, or one we made)."""

_PHONE_IN_PATH = re.compile(r"((?:%2[Bb]|\+)?\d{3})\d+(\d{2})")


def mask_digits(text: str) -> str:
    """Mask runs of 6+ digits (phone numbers) as ``+12***90`` so logs never hold a full number.

    Used on request paths in the access log (PITFALLS: baileys-api#333).
    """
    return _PHONE_IN_PATH.sub(lambda m: m.group(1) + "***" + m.group(2), text)


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):  # the access log passes its request's id
            record.request_id = request_id.get()
        return True


def configure(level: str = "INFO", fmt: str = "json") -> None:
    """Configure the root logger once per process: JSON (default) or plain text to stderr."""
    handler = logging.StreamHandler(sys.stderr)
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
