"""Where a sender wants status changes pushed: the acceptance event's optional ``webhook``.

Shape (the seed system's send-request shape, camelCase)::

    {"url": "https://hooks.example.com/status",
     "authentication": {"type": "NONE"} | {"type": "HEADERS", "headers": {"X-Token": "..."}}}

Carried on the PROVIDER_ACCEPTANCE event in the event log, then on the change records
(``schemas.changes``). Whether the URL may be dialled (https, public address) is decided by
the notifier at every attempt (docs/push.md), not here: here only its syntax is checked.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

_NUMBER_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*", re.IGNORECASE)
"""A host whose last label is a number is an IPv4 address to the WHATWG URL standard
("ends in a number"), whatever its other labels."""
_DOTTED_QUAD = re.compile(
    r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(?:\.(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}"
)

HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64}$")
"""An HTTP header name (RFC 9110 token)."""

RESERVED_HEADERS = frozenset(
    {"content-type", "content-length", "host", "transfer-encoding", "connection"}
)
"""Headers the notifier sets itself; ``webhook-*`` and ``msgstatus-*`` are reserved too."""


class Authentication(BaseModel):
    """How the receiver authenticates the notifier: nothing, or extra headers on every POST."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["NONE", "HEADERS"] = "NONE"
    headers: dict[str, Annotated[str, StringConstraints(max_length=1024)]] = Field(
        default_factory=dict, max_length=20
    )

    @field_validator("headers")
    @classmethod
    def _names(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            lower = name.lower()
            if not HEADER_NAME.match(name):
                raise ValueError(f"not an HTTP header name: {name[:64]!r}")
            if lower in RESERVED_HEADERS or lower.startswith(("webhook-", "msgstatus-")):
                raise ValueError(f"header {name} is set by the notifier itself")
            if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
                raise ValueError(f"header {name}: control characters are not allowed")
        return value


class WebhookConfig(BaseModel):
    """A push endpoint named by a sender: an absolute http(s) URL and its authentication."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: Annotated[str, StringConstraints(min_length=8, max_length=2048)]
    authentication: Authentication = Authentication()

    @field_validator("url")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if any(ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in value):
            raise ValueError("a URL holds no spaces or control characters")
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("an absolute https URL, e.g. https://hooks.example.com/status")
        if parts.username or parts.password:
            raise ValueError("credentials in the URL are not allowed: use authentication")
        try:
            parts.port  # noqa: B018 - raises for a port out of range or not a number
        except ValueError:
            raise ValueError("the port must be a number from 1 to 65535") from None
        last = parts.hostname.rstrip(".").rsplit(".", 1)[-1]
        if _NUMBER_LABEL.fullmatch(last) and not _DOTTED_QUAD.fullmatch(parts.hostname):
            # 2130706433, 0x7f.1, 127.1: IPv4 addresses in spellings that HTTP clients read
            # differently (the WHATWG URL standard makes them 127.0.0.1; aiohttp refuses them).
            raise ValueError("an IPv4 address is written as four decimal numbers, a.b.c.d")
        return value
