"""Settings of the read API (``MSGSTATUS_*``), read once at start-up."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field

from schemas.settings import CommonSettings, CsvList, split_csv


class ApiSettings(CommonSettings):
    """Read API settings. Durations in seconds.

    ``api_keys``: the accepted ``X-Api-Key`` values (comma-separated); with none configured
    every request gets 403. ``generation_poll_s``: how often the served projection generation
    is re-read, so a finished replay is picked up; ``generation`` pins one instead.
    """

    host: str = "127.0.0.1"
    api_port: int = Field(default=8080, ge=0, le=65535)
    api_keys: Annotated[CsvList, BeforeValidator(split_csv)] = []  # noqa: RUF012 - pydantic copies defaults
    redis_max_connections: int = Field(default=64, ge=1)
    # A read that Redis does not answer within this is an outage (503), not a wait: a hung
    # Redis (paused, swapping, a network partition) otherwise holds every request for the
    # operating system's TCP timeout. redis-py retries a timed-out read up to 3 times.
    redis_timeout_s: float = Field(default=1.0, gt=0)
    generation_poll_s: float = Field(default=1.0, gt=0)
    generation: str = Field(default="", description="serve this generation; empty: follow")
    shutdown_timeout_s: float = Field(default=10.0, gt=0)
    namespace: str = Field(default="notify", description="the notifier's Redis namespace")
    per_slot_lists: bool = Field(
        default=False,
        description="list pages without the single-node script (Redis Cluster); see docs",
    )
