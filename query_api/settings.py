"""Settings of the read API (``MSGSTATUS_*``), read once at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BeforeValidator, Field, model_validator

from query_api.keys import parse_keys_file
from schemas.settings import CommonSettings, CsvList, split_csv


class ApiSettings(CommonSettings):
    """Read API settings. Durations in seconds.

    ``api_keys``: accepted ``X-Api-Key`` values (comma-separated), keys of the default tenant
    with every service; ``api_keys_file``: keys bound to a tenant and services, stored as
    SHA-256 hashes, re-read on SIGHUP and when it changes (checked every ``api_keys_poll_s``;
    query_api.keys). With no key configured every request gets 403. ``audit_queue_max``:
    audit records waiting for Kafka before further ones are dropped (query_api.audit).
    ``generation_poll_s``: how often the served projection generation
    is re-read, so a finished replay is picked up; ``generation`` pins one instead.
    """

    host: str = "127.0.0.1"
    api_port: int = Field(default=8080, ge=0, le=65535)
    api_keys: Annotated[CsvList, BeforeValidator(split_csv)] = []  # noqa: RUF012 - pydantic copies defaults
    api_keys_file: str = Field(default="", description="JSON file of hashed, scoped API keys")
    api_keys_poll_s: float = Field(default=0.5, gt=0, le=1.0)
    audit_queue_max: int = Field(default=10_000, ge=1)
    redis_max_connections: int = Field(default=64, ge=1)
    # A read that Redis does not answer within this is an outage (503), not a wait: a hung
    # Redis (paused, swapping, a network partition) otherwise holds every request for the
    # operating system's TCP timeout. redis-py retries once; see read_deadline_s.
    redis_timeout_s: float = Field(default=1.0, gt=0)
    generation_poll_s: float = Field(default=1.0, gt=0)
    generation: str = Field(default="", description="serve this generation; empty: follow")
    shutdown_timeout_s: float = Field(default=10.0, gt=0)
    namespace: str = Field(default="notify", description="the notifier's Redis namespace")
    per_slot_lists: bool = Field(
        default=False,
        description="list pages without the single-node script (Redis Cluster); see docs",
    )

    @property
    def read_deadline_s(self) -> float:
        """Seconds one request may spend on Redis in all (a retry and waiting for a pooled
        connection included) before it is a 503: twice ``redis_timeout_s``, and a little."""
        return 2 * self.redis_timeout_s + 0.1

    @model_validator(mode="after")
    def _keys_file(self) -> ApiSettings:
        """A keys file that cannot be read or is invalid stops the process, naming it."""
        if self.api_keys_file:
            where = f"MSGSTATUS_API_KEYS_FILE ({self.api_keys_file})"
            try:
                raw = Path(self.api_keys_file).read_bytes()
            except OSError as exc:
                raise ValueError(f"{where}: {exc}") from None
            parse_keys_file(raw, where)
        return self


class AuditSettings(CommonSettings):
    """``msgstatus audit``: the audit records from ``since`` (ISO 8601), of one key id or all."""

    since: str = Field(description="ISO 8601 time: list the audit records from it")
    key: str = Field(default="", description="only the records of this key id")
