"""Errors of the ingest service; only the HTTP handlers turn them into problem documents.

Ingest never retries by itself: the sender does. Each error therefore maps to one HTTP answer,
named on its class, and the answer tells the sender what to do (a 503 with ``Retry-After``
means "send the same again later"; a 4xx means "this will never be accepted as it is").
"""

from __future__ import annotations

from schemas.problems import FieldError

__all__ = [
    "BodyTimeout",
    "IngestError",
    "InvalidBody",
    "LogUnavailable",
    "Unauthenticated",
    "UnsignedRetry",
]


class IngestError(Exception):
    """Root of ingest errors."""


class InvalidBody(IngestError):  # noqa: N818 - reads as the HTTP condition it maps to (400)
    """400: the body is not valid for its format; ``errors`` names each bad field."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


class Unauthenticated(IngestError):  # noqa: N818 - maps to HTTP 401
    """401: the signature or credentials are missing or wrong, or none are configured."""


class BodyTimeout(IngestError):  # noqa: N818 - maps to HTTP 408
    """408: the client did not send its whole body within ``body_timeout_s`` seconds."""


class LogUnavailable(IngestError):  # noqa: N818 - maps to HTTP 503
    """503: Kafka did not acknowledge in time or is unreachable; nothing was accepted."""


class UnsignedRetry(Unauthenticated):
    """503: a callback came without the signature its provider always sends (Vonage Messages).

    Vonage documents that an internal error can rarely make it send an unsigned callback and
    that a 5xx answer makes it retry, signed (docs/providers.md): so this is answered 503
    with ``Retry-After`` rather than 401.
    """
