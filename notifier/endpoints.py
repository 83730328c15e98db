"""Where a change goes: the message's own webhook, and configured subscriptions.

The subscriptions file (``MSGSTATUS_SUBSCRIPTIONS_FILE``, JSON; docs/push.md)::

    {"subscriptions": [{"id": "crm", "url": "https://crm.example.com/status",
                        "service": "DIGITALSIGN",          # absent or null: every message
                        "tenant": "acme",                  # absent: the default tenant "_"
                        "secrets": ["whsec_new", "whsec_old"],
                        "headers": {"Authorization": "Bearer ..."}}],
     "origins": {"https://hooks.example.com": {"secrets": ["whsec_..."]}}}

``origins`` gives the signing secrets of webhooks named by acceptances, per origin (scheme,
host, port); others are signed with ``MSGSTATUS_SIGNING_SECRETS``. One or two secrets: two
during a rotation, both signatures sent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from notifier.guard import RefusedAddress, check_url
from notifier.signing import check_secret
from schemas.changes import ChangeRecord
from schemas.tenancy import DEFAULT_TENANT, TENANT_PATTERN
from schemas.webhook_config import Authentication, WebhookConfig


class ConfigError(ValueError):
    """The subscriptions file or a secret is unusable; the notifier does not start."""


Secrets = list[str]


class Subscription(BaseModel):
    """A configured endpoint of one tenant: every message of the tenant, or those of one
    ``reference.service``. A change of another tenant's message is never sent to it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    url: str
    tenant: str = Field(default=DEFAULT_TENANT, pattern=TENANT_PATTERN)
    service: str | None = None
    secrets: Secrets = Field(default_factory=list, max_length=2)
    headers: dict[str, str] = Field(default_factory=dict)


class OriginSecrets(BaseModel):
    """Signing secrets of one origin's acceptance-named webhooks."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    secrets: Secrets = Field(min_length=1, max_length=2)


class SubscriptionsFile(BaseModel):
    """The whole file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    subscriptions: list[Subscription] = Field(default_factory=list)
    origins: dict[str, OriginSecrets] = Field(default_factory=dict)


def _checked(secret: str, where: str) -> None:
    try:
        check_secret(secret)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One place to POST to: ``id`` is the body's ``webhookConfigurationId`` and the key of
    the per-endpoint state (schedule, circuit, rate)."""

    id: str
    url: str
    headers: tuple[tuple[str, str], ...]
    secrets: tuple[str, ...]

    @property
    def host(self) -> str:
        """The URL's host name (shown in the deliveries endpoint; never the full URL)."""
        return urlsplit(self.url).hostname or ""


def origin(url: str) -> str:
    """``scheme://host[:port]`` of a URL, lower case, default ports left out."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    default = {"https": 443, "http": 80}.get(parts.scheme)
    port = f":{parts.port}" if parts.port and parts.port != default else ""
    return f"{parts.scheme}://{host}{port}"


class Directory:
    """Resolves a change to its endpoints (configured ones checked once, at start-up)."""

    def __init__(
        self,
        config: SubscriptionsFile,
        default_secrets: Sequence[str],
        allow_hosts: Collection[str],
    ) -> None:
        self.default_secrets = tuple(default_secrets)
        if not self.default_secrets:
            raise ConfigError(
                "MSGSTATUS_SIGNING_SECRETS: at least one Standard Webhooks secret (whsec_...)"
            )
        self.origins = {origin(k): tuple(v.secrets) for k, v in config.origins.items()}
        for secret in (*self.default_secrets, *(s for v in self.origins.values() for s in v)):
            _checked(secret, "signing secrets")
        self.subscriptions: list[tuple[str, str | None, Endpoint]] = []
        for sub in config.subscriptions:
            try:
                check_url(sub.url, allow_hosts)
                WebhookConfig(url=sub.url, authentication=Authentication(headers=sub.headers))
            except (RefusedAddress, ValidationError) as exc:
                raise ConfigError(f"subscription {sub.id}: {exc}") from None
            secrets = tuple(sub.secrets) or self.secrets_for(sub.url)
            for secret in secrets:
                _checked(secret, f"subscription {sub.id}")
            endpoint = Endpoint(sub.id, sub.url, tuple(sorted(sub.headers.items())), secrets)
            self.subscriptions.append((sub.tenant, sub.service, endpoint))

    @classmethod
    def load(
        cls, path: str, default_secrets: Sequence[str], allow_hosts: Collection[str]
    ) -> Directory:
        """Read the subscriptions file (none: no subscriptions). Raises :class:`ConfigError`."""
        config = SubscriptionsFile()
        if path:
            try:
                config = SubscriptionsFile.model_validate_json(Path(path).read_bytes())
            except (OSError, ValidationError) as exc:
                raise ConfigError(f"subscriptions file {path}: {exc}") from None
        return cls(config, default_secrets, allow_hosts)

    def secrets_for(self, url: str) -> tuple[str, ...]:
        """The signing secrets of an acceptance-named URL: its origin's, else the defaults."""
        return self.origins.get(origin(url), self.default_secrets)

    def for_webhook(self, webhook: WebhookConfig) -> Endpoint:
        """The endpoint of an acceptance's webhook; its id is derived from URL and headers."""
        headers = tuple(sorted(webhook.authentication.headers.items()))
        digest = hashlib.sha256(repr((webhook.url, headers)).encode()).hexdigest()[:20]
        return Endpoint(f"wh-{digest}", webhook.url, headers, self.secrets_for(webhook.url))

    def endpoints(self, change: ChangeRecord, webhook: WebhookConfig | None) -> list[Endpoint]:
        """The message's own webhook (when it named one) and every matching subscription of
        the message's tenant."""
        out = [self.for_webhook(webhook)] if webhook is not None else []
        tenant, service = change.tenant_name, change.service
        out += [e for t, s, e in self.subscriptions if t == tenant and (s is None or s == service)]
        return out

    def by_id(self, endpoint_id: str) -> Endpoint | None:
        """A configured subscription by id (to re-read its secrets at attempt time)."""
        return next((e for _, _, e in self.subscriptions if e.id == endpoint_id), None)
