"""Settings of the ingest service (``MSGSTATUS_*``), read once at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from ingest.providers.ids import IdBase
from ingest.providers.registry import NAMES
from ingest.providers.vonage import VonageMethod
from schemas.settings import CommonSettings, CsvList, split_csv
from schemas.tenancy import DEFAULT_TENANT, check_tenant

CREDENTIALS = (
    "webhook_secret",
    "twilio_auth_token",
    "vonage_signature_secret",
    "infobip_webhook_username",
    "infobip_webhook_password",
    "sinch_webhook_username",
    "sinch_webhook_password",
    "smpp_webhook_token",
)
"""The settings that authenticate a webhook: each set of them is bound to one tenant."""


class TenantCredentials(BaseModel):
    """One tenant's credentials in the tenants file: the same names as the settings."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    webhook_secret: SecretStr | None = None
    twilio_auth_token: SecretStr | None = None
    vonage_signature_secret: SecretStr | None = None
    infobip_webhook_username: str | None = None
    infobip_webhook_password: SecretStr | None = None
    sinch_webhook_username: str | None = None
    sinch_webhook_password: SecretStr | None = None
    smpp_webhook_token: SecretStr | None = None


class TenantsFile(BaseModel):
    """``MSGSTATUS_TENANTS_FILE``: ``{"tenants": {"<tenant>": {<credential settings>}}}``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tenants: dict[str, TenantCredentials] = Field(default_factory=dict)


def _credential_values(creds: BaseModel) -> dict[str, str]:
    out = {}
    for name in CREDENTIALS:
        value = getattr(creds, name)
        if value is not None:
            out[name] = value.get_secret_value() if isinstance(value, SecretStr) else value
    return out


class IngestSettings(CommonSettings):
    """Ingest settings. Sizes in bytes, durations in seconds.

    ``webhook_secret`` is the Standard Webhooks secret (``whsec_`` + base64) for
    ``POST /webhooks/events``. Provider adapters have their own credentials (docs/providers.md):
    an adapter without them refuses every callback (401) unless its name is listed in
    ``allow_unsigned_providers`` (local development only); ``events`` there does the same for
    the canonical endpoint. These credentials are the default tenant's (``_``);
    ``tenants_file`` binds further credential sets to other tenants (:meth:`tenants`;
    docs/operations.md, "Tenants, keys and audit"). Raises ``pydantic.ValidationError``
    naming the setting when a value is invalid or a credential pair is half set.
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
    tenants_file: str = Field(
        default="",
        description="JSON file binding credential sets to tenants; empty: one tenant, '_'",
    )

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
        self.tenants()  # a bad tenants file stops the process at start-up, naming it
        return self

    def tenants(self) -> dict[str, IngestSettings]:
        """Each tenant's settings: the default tenant's are these; every tenant of
        ``tenants_file`` gets a copy with its own credentials (and only those). Raises
        ``ValueError`` naming ``MSGSTATUS_TENANTS_FILE`` when the file is unreadable or
        invalid, names the default tenant, half-sets a user/password pair, or binds one
        credential to two tenants (which could then not be told apart)."""
        out: dict[str, IngestSettings] = {DEFAULT_TENANT: self}
        if not self.tenants_file:
            return out
        where = f"MSGSTATUS_TENANTS_FILE ({self.tenants_file})"
        try:
            parsed = TenantsFile.model_validate_json(Path(self.tenants_file).read_bytes())
        except (OSError, ValidationError) as exc:
            raise ValueError(f"{where}: {exc}") from None
        seen = dict.fromkeys(_credential_values(self).items(), DEFAULT_TENANT)
        blank = dict.fromkeys(CREDENTIALS)
        for tenant, creds in parsed.tenants.items():
            try:
                check_tenant(tenant)
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from None
            if tenant == DEFAULT_TENANT:
                raise ValueError(
                    f"{where}: the default tenant '_' has the MSGSTATUS_* credentials; "
                    "name other tenants in the file"
                )
            for name, value in _credential_values(creds).items():
                if name.endswith("_username"):
                    continue  # a user name may repeat; its password must not
                other = seen.setdefault((name, value), tenant)
                if other != tenant:
                    raise ValueError(
                        f"{where}: {name} of tenant {tenant!r} is also tenant {other!r}'s"
                    )
            for name in ("infobip", "sinch"):
                pair = (
                    getattr(creds, f"{name}_webhook_username"),
                    getattr(creds, f"{name}_webhook_password"),
                )
                if (pair[0] is None) != (pair[1] is None):
                    raise ValueError(
                        f"{where}: tenant {tenant!r}: {name}_webhook_username and "
                        "_password go together"
                    )
            update = {**blank, **{n: getattr(creds, n) for n in CREDENTIALS}, "tenants_file": ""}
            out[tenant] = self.model_copy(update=update)
        return out
