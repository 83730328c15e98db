"""Settings of the ingest service (``MSGSTATUS_*``), read once at start-up."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field, SecretStr

from schemas.settings import CommonSettings, CsvList, split_csv


class IngestSettings(CommonSettings):
    """Ingest settings. Sizes in bytes, durations in seconds.

    ``webhook_secret`` is the Standard Webhooks secret (``whsec_`` + base64) for
    ``POST /webhooks/events``; without it that endpoint refuses every call unless
    ``events`` is listed in ``allow_unsigned_providers`` (local development only).
    """

    host: str = "127.0.0.1"
    ingest_port: int = Field(default=8081, ge=0, le=65535)
    webhook_secret: SecretStr | None = None
    allow_unsigned_providers: Annotated[CsvList, BeforeValidator(split_csv)] = []  # noqa: RUF012 - pydantic copies defaults
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    max_batch_events: int = Field(default=10_000, ge=1)
    produce_timeout_s: float = Field(default=5.0, gt=0)
    retry_after_s: int = Field(default=5, ge=1)
    shutdown_timeout_s: float = Field(default=10.0, gt=0)
    linger_ms: int = Field(default=2, ge=0)
