"""Errors of the ingest service; only the HTTP handlers turn them into problem documents."""

from __future__ import annotations

from schemas.problems import FieldError


class IngestError(Exception):
    """Root of ingest errors. ``retriable`` says whether the sender's retry can succeed."""

    retriable = False


class InvalidBody(IngestError):  # noqa: N818 - reads as the HTTP condition it maps to (400)
    """The body is not valid for its format; ``errors`` names each bad field. Not retriable."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


class Unauthenticated(IngestError):  # noqa: N818 - maps to HTTP 401
    """The signature or credentials are missing or wrong, or none are configured."""


class LogUnavailable(IngestError):  # noqa: N818 - maps to HTTP 503
    """Kafka did not acknowledge in time or is unreachable. Retriable: nothing was accepted."""

    retriable = True


class UnsignedRetry(Unauthenticated):
    """A callback came without the signature its provider always sends (Vonage Messages).

    Vonage documents that an internal error can rarely make it send an unsigned callback and
    that a 5xx answer makes it retry, signed (docs/providers.md): so this is answered 503
    with ``Retry-After`` rather than 401. Retriable: the provider's retry is signed.
    """

    retriable = True
