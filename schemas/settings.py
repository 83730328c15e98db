"""Settings every service shares: where Kafka and Redis are, topic names, retention.

Read once at start-up from ``MSGSTATUS_*`` environment variables (or the same names as CLI
flags) into a frozen object that is passed in; no handler reads ``os.environ``.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from runtime import redis_client


def split_csv(value: object) -> object:
    """Accept ``a,b,c`` (and JSON lists) for list settings given as environment variables."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            import json  # noqa: PLC0415 - only for the rare JSON form

            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


CsvList = Annotated[list[str], NoDecode]


class CommonSettings(BaseSettings):
    """Connection and log settings (docs/design.md §1). Durations in seconds unless ``_ms``."""

    model_config = SettingsConfigDict(
        env_prefix="MSGSTATUS_",
        frozen=True,
        extra="ignore",
        cli_kebab_case=True,
        cli_implicit_flags=True,
    )

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0",
        description="redis://host:port/db, or redis+cluster://host:port[,host:port...]",
    )
    topic: str = "message-status.events"
    dlq_topic: str = Field(default="", description="dead-letter topic; default <topic>.dlq")
    topic_partitions: int = Field(default=6, ge=1, le=1000)
    topic_replication_factor: int = Field(default=1, ge=1, le=10)
    retention_days: int = Field(default=90, ge=1, le=3650)
    log_level: str = "INFO"
    log_format: str = Field(default="json", pattern="^(json|text)$")

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        return redis_client.check_url(value)

    @field_validator("dlq_topic")
    @classmethod
    def _no_spaces(cls, value: str) -> str:
        if any(ch.isspace() for ch in value):
            raise ValueError("topic names contain no white space")
        return value

    @property
    def dead_letter_topic(self) -> str:
        """The dead-letter topic: ``MSGSTATUS_DLQ_TOPIC`` or ``<topic>.dlq``."""
        return self.dlq_topic or f"{self.topic}.dlq"

    @property
    def redis_cluster(self) -> bool:
        """Whether ``redis_url`` names a Redis Cluster (``redis+cluster://``)."""
        return redis_client.is_cluster_url(self.redis_url)

    @property
    def retention_ms(self) -> int:
        """Retention of the Redis projection in milliseconds."""
        return self.retention_days * 86_400_000
