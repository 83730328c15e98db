"""The provider adapters, one line each: the registry that drives the routes, the id normal
forms, the names ``allow_unsigned_providers`` accepts and the OpenAPI paths.

Adding a provider is one module declaring a ``SPEC``
(:class:`~ingest.providers.common.AdapterSpec`: name, methods, family, ``from_settings``,
OpenAPI summary, media types and credential, success answer) and an adapter with
``configured``, ``precheck``, ``handle`` and ``normalize_id``, plus its line in
:data:`ADAPTERS` (and its credential settings in :mod:`ingest.settings`). No aiohttp here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ingest.providers import infobip, sinch, smpp, twilio, vonage, vonage_messages
from ingest.providers.common import Adapter, AdapterSpec
from ingest.providers.ids import IdRule

if TYPE_CHECKING:
    from ingest.settings import IngestSettings

ADAPTERS: tuple[AdapterSpec, ...] = (
    twilio.SPEC,
    vonage.SPEC,
    vonage_messages.SPEC,
    infobip.SPEC,
    sinch.SPEC,
    smpp.SPEC,
)
"""Every provider adapter, in the order its routes are registered (docs/providers.md)."""

NAMES: tuple[str, ...] = tuple(spec.name for spec in ADAPTERS)
"""The adapters' names: their paths (``/webhooks/<name>``), their ``source`` and the names
``allow_unsigned_providers`` accepts, besides ``events`` (the canonical endpoint)."""

Configured = tuple[AdapterSpec, Adapter]
"""An adapter module's spec with its adapter, configured from the settings."""


def build(settings: IngestSettings) -> list[Configured]:
    """Every adapter of :data:`ADAPTERS`, configured from ``settings``."""
    return [(spec, spec.from_settings(settings)) for spec in ADAPTERS]


@dataclass(frozen=True, slots=True)
class ProviderIds:
    """Normalises ``provider.id`` of canonical events that name an adapter's provider family,
    with that family's adapter (both Vonage adapters share ``vonage``: the first one's rule,
    which is the same, serves). Rules: docs/providers.md, "Provider ids"."""

    rules: Mapping[str, IdRule]

    @classmethod
    def of(cls, adapters: Sequence[Configured]) -> ProviderIds:
        """The rules of configured adapters, one per family (the first adapter of each)."""
        rules: dict[str, IdRule] = {}
        for spec, adapter in adapters:
            rules.setdefault(spec.family, adapter.normalize_id)
        return cls(rules)

    @classmethod
    def from_settings(cls, settings: IngestSettings) -> ProviderIds:
        """The rules of the adapters configured from ``settings`` (SMPP id bases)."""
        return cls.of(build(settings))

    def normalize(self, name: str, raw: str, phone: str | None) -> str:
        """The id in the form the ``name`` family's adapter writes it; other providers' ids
        unchanged. Raises ``ValueError`` when the id cannot be one of that family's."""
        rule = self.rules.get(name.strip().lower())
        return raw if rule is None else rule(raw, phone)
