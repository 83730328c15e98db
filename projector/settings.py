"""Settings of the projector (``MSGSTATUS_*``), read once at start-up."""

from __future__ import annotations

from pydantic import Field

from schemas.layout import DEFAULT_BUCKETS
from schemas.settings import CommonSettings


class ProjectorSettings(CommonSettings):
    """Projector settings. Durations in seconds unless named ``_ms``.

    ``generation`` pins the projection generation to write; empty means the one the read API
    serves (``msgstatus:generation``, ``0`` when unset). ``host``/``metrics_port``: where the
    Prometheus metrics are served (``0.0.0.0`` in a container, so Prometheus can scrape them).
    """

    group_id: str = "msgstatus-projector"
    batch_max_records: int = Field(default=2000, ge=1, le=100_000)
    poll_timeout_ms: int = Field(default=200, ge=1)
    generation: str = ""
    redis_retry_max_s: float = Field(default=5.0, gt=0)
    shutdown_timeout_s: float = Field(default=15.0, gt=0)
    host: str = "127.0.0.1"
    metrics_port: int = Field(default=9108, ge=0, le=65535)
    projection_buckets: int = Field(default=DEFAULT_BUCKETS, ge=1, le=10_000_000)
    """Buckets of a generation this process creates: about retained messages / 20."""
    sweep_every_s: float = Field(default=1.0, gt=0)
    sweep_cycle_s: float = Field(default=3600.0, gt=0)
    """The expiry sweep visits every bucket once per cycle (projector.sweep)."""


class ReplaySettings(ProjectorSettings):
    """``msgstatus replay`` options on top of the projector's settings.

    ``since``: ISO 8601 time to start from (default: the whole log); ``in_place``: catch the
    served generation up instead of building a new one; ``grace_s``: seconds between the
    switch and deleting the old generation (readers finish with it); ``workers``: processes
    that fold disjoint partitions side by side (up to the topic's partition count).
    """

    since: str | None = None
    workers: int = Field(default=1, ge=1, le=64)
    in_place: bool = False
    grace_s: float = Field(default=5.0, ge=0)
    # Off by default: a replay often runs beside a projector, which has 9108.
    metrics_port: int = Field(default=0, ge=0, le=65535)


class DlqSettings(ProjectorSettings):
    """``msgstatus dlq`` options: ``limit`` letters to list; ``from_beginning`` to resend all."""

    limit: int = Field(default=100, ge=1)
    from_beginning: bool = False
