"""Settings of the ingest service (``MSGSTATUS_*``), read once at start-up."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BeforeValidator, Field, SecretStr, field_validator, model_validator

from ingest.providers.ids import IdBase
from ingest.providers.registry import NAMES
from ingest.providers.vonage import VonageMethod
from schemas.settings import CommonSettings, CsvList, split_csv


class IngestSettings(CommonSettings):
    """Ingest settings. Sizes in bytes, durations in seconds.

    ``webhook_secret`` is the Standard Webhooks secret (``whsec_`` + base64) for
    ``POST /webhooks/events``. Provider adapters have their own credentials (docs/providers.md):
    an adapter without them refuses every callback (401) unless its name is listed in
    ``allow_unsigned_providers`` (local development only); ``events`` there does the same for
    the canonical endpoint. Raises ``pydantic.ValidationError`` naming the setting when a
    value is invalid or a credential pair is half set.
    """

    host: str = "127.0.0.1"
    ingest_port: int = Field(default=8081, ge=0, le=65535)
    webhook_secret: SecretStr | None = None
    allow_unsigned_providers: Annotated[CsvList, BeforeValidator(split_csv)] = []  # noqa: RUF012 - pydantic copies defaults
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    max_batch_events: int = Field(default=10_000, ge=1)
    produce_timeout_s: float = Field(default=5.0, gt=0)
    body_timeout_s: float = Field(default=30.0, gt=0)
    retry_after_s: int = Field(default=5, ge=1)
    # Events handed to Kafka and not yet acknowledged, per process; past it webhooks are
    # answered 503 + Retry-After at once (ingest/admission.py). Sized so that the accepted
    # work drains in about a quarter of produce_timeout_s at the slowest measured
    # acknowledged rate (~4,400 events/s in 100-event bodies on a slow 2-core machine:
    # 4,400 x 5 s / 4 ~ 5,000); docs/benchmarks.md has the overload rows.
    max_events_in_flight: int = Field(default=5_000, ge=1)
    # Event times further ahead of our clock than this are implausible: a canonical event is
    # refused (400 naming occurredAt), a provider receipt takes its receive time instead.
    max_clock_skew_s: int = Field(default=300, ge=0, le=7 * 86400)
    shutdown_timeout_s: float = Field(default=10.0, gt=0)
    # 0: each request's records leave at once and later ones batch up behind the request in
    # flight; measured ~3x the acknowledged records/s of 2 ms with 64 concurrent webhooks.
    linger_ms: int = Field(default=0, ge=0)

    # --- provider adapters (docs/providers.md) ---------------------------------------
    public_base_url: str | None = Field(
        default=None,
        description="scheme://host[:port][/prefix] the providers call; Twilio signs this URL",
    )
    twilio_auth_token: SecretStr | None = None
    vonage_signature_secret: SecretStr | None = None
    vonage_signature_method: VonageMethod = "md5hash"
    vonage_signature_max_age_s: int = Field(default=25 * 3600, ge=60)
    infobip_webhook_username: str | None = None
    infobip_webhook_password: SecretStr | None = None
    sinch_webhook_username: str | None = None
    sinch_webhook_password: SecretStr | None = None
    smpp_webhook_token: SecretStr | None = None
    smpp_timezone: str = "UTC"
    smpp_receipt_id_base: IdBase = "text"
    smpp_submit_id_base: IdBase = "text"

    @field_validator("public_base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("http://", "https://")) or any(c in value for c in "?# "):
            raise ValueError("MSGSTATUS_PUBLIC_BASE_URL is scheme://host[:port][/prefix]")
        return value.rstrip("/")

    @field_validator("smpp_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        if value.upper() == "UTC":
            return "UTC"
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"MSGSTATUS_SMPP_TIMEZONE: unknown time zone {value!r}") from exc
        return value

    @field_validator("allow_unsigned_providers")
    @classmethod
    def _known_adapters(cls, value: list[str]) -> list[str]:
        names = [v.strip().lower() for v in value]
        unknown = sorted(set(names) - {"events", *NAMES})
        if unknown:
            raise ValueError(f"MSGSTATUS_ALLOW_UNSIGNED_PROVIDERS: unknown adapters {unknown}")
        return names

    @model_validator(mode="after")
    def _pairs(self) -> IngestSettings:
        for name in ("infobip", "sinch"):
            user = getattr(self, f"{name}_webhook_username")
            password = getattr(self, f"{name}_webhook_password")
            if (user is None) != (password is None):
                raise ValueError(
                    f"MSGSTATUS_{name.upper()}_WEBHOOK_USERNAME and _PASSWORD go together"
                )
        numeric = {self.smpp_receipt_id_base, self.smpp_submit_id_base} - {"text"}
        if numeric and "text" in {self.smpp_receipt_id_base, self.smpp_submit_id_base}:
            raise ValueError(
                "MSGSTATUS_SMPP_RECEIPT_ID_BASE and MSGSTATUS_SMPP_SUBMIT_ID_BASE are both "
                "'text' or both numeric ('dec'/'hex')"
            )
        return self
