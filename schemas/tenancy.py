"""Tenants and access scopes (docs/design.md §8; docs/operations.md, "Tenants, keys and audit").

Every event belongs to one tenant, decided by ingest from the credential the webhook
authenticated with. A deployment with one tenant runs under :data:`DEFAULT_TENANT`. An API
key reads within a :class:`Scope`: its tenant and, optionally, a set of
``reference.service`` values. A message outside the scope reads exactly like an unknown one.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

DEFAULT_TENANT = "_"
"""The tenant of single-tenant deployments, of today's settings and of records without one."""

TENANT_PATTERN = r"^(?:_|[A-Za-z0-9][A-Za-z0-9_.-]{0,62})$"
"""A tenant name: ``_`` or 1-63 letters, digits, ``_``, ``.``, ``-`` (not starting with a mark)."""

_TENANT = re.compile(TENANT_PATTERN)


def check_tenant(name: str) -> str:
    """``name`` when it is a valid tenant name; raises ``ValueError`` otherwise."""
    if not _TENANT.fullmatch(name):
        raise ValueError(
            f"tenant {name[:64]!r}: '_' or 1-63 letters, digits, '_', '.', '-' "
            "(starting with a letter or digit)"
        )
    return name


@dataclass(frozen=True, slots=True)
class Scope:
    """What one API key may read: one tenant, and within it every service (``services`` None)
    or only messages whose ``reference.service`` is one of ``services``."""

    tenant: str = DEFAULT_TENANT
    services: frozenset[str] | None = None

    @property
    def unrestricted(self) -> bool:
        """True for the default tenant's keys without a service list (today's keys)."""
        return self.tenant == DEFAULT_TENANT and self.services is None

    def allows_service(self, service: str | None) -> bool:
        """True when a message with this ``reference.service`` is inside the scope's services
        (always, for a scope without a service list; never, for a message without a service
        when the scope has one)."""
        return self.services is None or (service is not None and service in self.services)

    def tag(self) -> str:
        """A short fingerprint of the scope (12 hex digits of SHA-256), carried in paging
        cursors so that a cursor of one scope is refused under another. Empty for the
        unrestricted scope, whose cursors keep their original form."""
        if self.unrestricted:
            return ""
        services = "\x1f".join(sorted(self.services)) if self.services is not None else "*"
        text = f"{self.tenant}\x1e{services}"
        return hashlib.sha256(text.encode()).hexdigest()[:12]


UNRESTRICTED = Scope()
"""The scope of today's plain ``MSGSTATUS_API_KEYS``: the default tenant, every service."""
