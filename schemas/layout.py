"""The projection's Redis key layout, format 2: bucketed hashes, one slot per write.

A generation (``msgstatus:<generation>:``) holds, per tenant ``<t>`` (``DEFAULT_TENANT`` for
single-tenant deployments; room for access scopes, docs/design.md §8):

``msgstatus:<g>:meta``                       HASH ``format`` -> 2, ``buckets`` -> N, ``sweep``
                                             -> the expiry sweep's bucket counter
``msgstatus:<g>:pos``                        HASH ``<topic>:<partition>`` -> next offset
``msgstatus:<g>:tenants``                    SET the tenants other than ``_`` it holds
``msgstatus:<g>:<t>:m:{<t>:<bucket>}``       HASH message id -> packed value (schemas.packed)
``msgstatus:<g>:<t>:pm:{<t>:q<bucket>}``     HASH ``<name>|<provider id>`` -> entries
``msgstatus:<g>:<t>:pk:{<t>:q<bucket>}:<name>|<id>``  HASH event id -> record JSON (parked
                                              receipts; in the slot of their provider bucket)
``msgstatus:<g>:<t>:p:{<t>:<phone>}``        ZSET message id, scored by send time (ms)
``msgstatus:<g>:<t>:r:{<t>:<reference>}``    ZSET message id, scored by send time (ms)

Messages and provider ids are spread over ``buckets`` hashes each, so a message costs a
hash field, not a key with its own TTL (docs/design.md §5). The part in braces is the Redis
Cluster hash tag: every write command touches one bucket or one index, so one slot.
Caller-supplied parts are percent-encoded (``schemas.keys.escape``), so they can never
address another entity's key. Which generations use this format: :func:`is_legacy`.
"""

from __future__ import annotations

import re
import zlib

from schemas.keys import PREFIX, escape
from schemas.tenancy import DEFAULT_TENANT

__all__ = ["DEFAULT_TENANT", "FORMAT", "Layout"]

FORMAT = 2
DEFAULT_BUCKETS = 1024
"""Buckets of a new generation unless configured; about retained messages / 20 is a good fit."""

_LEGACY = re.compile(r"0|g[0-9]+")


def is_legacy(generation: str) -> bool:
    """True for generations of the first format (one key per message): ``0``, ``g<ms>``.

    Those are the only names earlier releases created; any other name is this format.
    """
    return _LEGACY.fullmatch(generation) is not None


def meta_key(generation: str) -> str:
    """HASH ``format``, ``buckets``: written once, when the generation is created."""
    return f"{PREFIX}:{generation}:meta"


def tenants_key(generation: str) -> str:
    """SET: the tenants other than :data:`DEFAULT_TENANT` whose messages the generation holds
    (the expiry sweep visits their buckets too; schemas.tenancy)."""
    return f"{PREFIX}:{generation}:tenants"


def message_bucket(message_id: str, buckets: int) -> int:
    """The bucket of a message id (a lowercase UUID): time-low XOR the last 32 bits, mod N.

    Mixing both ends spreads UUIDv1 (constant node), v4 and v7 (time-ordered) ids alike. The
    list script computes the same in Lua (query_api.scripts)."""
    return (int(message_id[0:8], 16) ^ int(message_id[28:36], 16)) % buckets


def text_bucket(text: str, buckets: int) -> int:
    """The bucket of a provider reference: CRC-32 of its UTF-8, mod N."""
    return zlib.crc32(text.encode()) % buckets


def provider_field(name: str, provider_id: str) -> str:
    """Field of a provider id in its bucket; names match case-insensitively."""
    return f"{escape(name.lower())}|{escape(provider_id)}"


class Layout:
    """The key names of one generation and tenant of format 2 (prefixes computed once: key
    names are built on the projector's hot path)."""

    __slots__ = ("_tag", "base", "buckets", "generation", "message_prefix", "tenant")

    def __init__(
        self, generation: str, buckets: int = DEFAULT_BUCKETS, tenant: str = DEFAULT_TENANT
    ) -> None:
        self.generation = generation
        self.buckets = buckets
        self.tenant = tenant
        t = escape(tenant)
        self._tag = t
        self.base = f"{PREFIX}:{generation}:{t}:"
        """Prefix of the tenant's keys: ``msgstatus:<g>:<t>:``."""
        self.message_prefix = f"{self.base}m:{{{t}:"
        """A message bucket key without its bucket number and closing brace (list script)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Layout) and (self.generation, self.buckets, self.tenant) == (
            other.generation,
            other.buckets,
            other.tenant,
        )

    def __hash__(self) -> int:
        return hash((self.generation, self.buckets, self.tenant))

    def message_key(self, message_id: str) -> str:
        """HASH bucket holding ``message_id``'s packed value."""
        return f"{self.message_prefix}{message_bucket(message_id, self.buckets)}}}"

    def _provider_tag(self, field: str) -> str:
        return f"{{{self._tag}:q{text_bucket(field, self.buckets)}}}"

    def provider_key(self, field: str) -> str:
        """HASH bucket holding a provider field (:func:`provider_field`)."""
        return f"{self.base}pm:{self._provider_tag(field)}"

    def parked_key(self, field: str) -> str:
        """HASH event id -> record JSON: receipts waiting for their acceptance (with a TTL),
        in the slot of the provider bucket (the scripts touch both)."""
        return f"{self.base}pk:{self._provider_tag(field)}:{field}"

    def phone_index_key(self, phone: str) -> str:
        """ZSET: message ids sent to an E.164 number, scored by send time (epoch ms)."""
        return f"{self.base}p:{{{self._tag}:{escape(phone)}}}"

    def reference_index_key(self, reference_key: str) -> str:
        """ZSET: message ids sent under a reference key, scored by send time (epoch ms)."""
        return f"{self.base}r:{{{self._tag}:{escape(reference_key)}}}"

    def index_key(self, kind: str, value: str) -> str:
        """The phone (``p``) or reference (``r``) index key of ``value``."""
        return self.phone_index_key(value) if kind == "p" else self.reference_index_key(value)

    @property
    def positions_key(self) -> str:
        """HASH ``<topic>:<partition>`` -> next offset: how far the generation reflects the log."""
        return f"{PREFIX}:{self.generation}:pos"

    def all_message_keys(self) -> list[str]:
        """Every message bucket key (sweeps, benchmarks)."""
        return [f"{self.message_prefix}{b}}}" for b in range(self.buckets)]
