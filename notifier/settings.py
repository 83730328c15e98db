"""Settings of the notifier (``MSGSTATUS_*``), read once at start-up (docs/push.md)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field, field_validator
from pydantic_settings import NoDecode

from schemas.deliveries import DEFAULT_NAMESPACE
from schemas.settings import CommonSettings, CsvList, split_csv

DEFAULT_SCHEDULE = "5,30,120,600,1800,3600,7200,14400,28800,43200,43200,43200,43200,43200"
"""Seconds between attempts: 15 attempts over about 3.2 days (before jitter)."""


class NotifierSettings(CommonSettings):
    """Notifier settings. Durations in seconds.

    ``subscriptions_file``: JSON file of configured endpoints and secrets (docs/push.md);
    ``signing_secrets``: default Standard Webhooks secrets (one, or two during a rotation);
    ``allow_hosts``: host names dialled even on a private address and over plain http (local
    testing only); ``retry_schedule_s``: delays between attempts, jittered by
    ``retry_jitter``; ``lease_s``: how long a claimed delivery is hidden from other claims
    (a notifier killed mid-attempt is retried after it); per endpoint:
    ``endpoint_concurrency``, ``endpoint_rate_per_s``, ``breaker_failures`` in a row open the
    circuit for ``breaker_open_s``.
    """

    group_id: str = "msgstatus-notifier"
    namespace: str = Field(default=DEFAULT_NAMESPACE, pattern=r"^[a-z0-9_-]{1,32}$")
    subscriptions_file: str = ""
    signing_secrets: Annotated[CsvList, BeforeValidator(split_csv)] = []  # noqa: RUF012 - pydantic copies defaults
    allow_hosts: Annotated[CsvList, BeforeValidator(split_csv)] = []  # noqa: RUF012 - pydantic copies defaults
    retry_schedule_s: Annotated[list[float], NoDecode, BeforeValidator(split_csv)] = Field(
        default_factory=lambda: [float(x) for x in DEFAULT_SCHEDULE.split(",")]
    )
    retry_jitter: float = Field(default=0.2, ge=0, le=1)
    retry_after_max_s: float = Field(default=43_200, gt=0)
    request_timeout_s: float = Field(default=10.0, gt=0)
    lease_s: float = Field(default=60.0, gt=0)
    claim_batch: int = Field(default=200, ge=1, le=10_000)
    idle_poll_s: float = Field(default=0.05, gt=0)
    endpoint_concurrency: int = Field(default=8, ge=1, le=1000)
    endpoint_rate_per_s: float = Field(default=200.0, gt=0)
    breaker_failures: int = Field(default=5, ge=1)
    breaker_open_s: float = Field(default=30.0, gt=0)
    max_connections: int = Field(default=256, ge=1)
    batch_max_records: int = Field(default=1000, ge=1, le=100_000)
    poll_timeout_ms: int = Field(default=200, ge=1)
    shutdown_timeout_s: float = Field(default=10.0, gt=0)
    host: str = "127.0.0.1"
    metrics_port: int = Field(default=9109, ge=0, le=65535)

    @field_validator("retry_schedule_s")
    @classmethod
    def _positive(cls, value: list[float]) -> list[float]:
        if not value or any(v <= 0 for v in value):
            raise ValueError("one or more positive numbers of seconds, e.g. 5,30,120")
        return value


class RecoverSettings(NotifierSettings):
    """``msgstatus notifier recover``: ``since`` (ISO 8601) is where to read the change log from."""

    since: str = ""
    metrics_port: int = Field(default=0, ge=0, le=65535)
