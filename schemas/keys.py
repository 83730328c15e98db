"""The Redis key layout, written down once (docs/design.md §5).

Every key starts ``msgstatus:<generation>:``. The part in braces is the Redis Cluster hash
tag, so all keys of one message share a slot, and so do the keys of one provider message.
Caller-supplied parts (phone numbers, reference keys, provider names and ids) are
percent-encoded, so ``:``, ``{``, ``}``, ``*`` or ``/`` in them can never address another
entity's key (docs/pitfalls.md: langgraph#8851); user input is never passed to KEYS or SCAN MATCH.
"""

from __future__ import annotations

from urllib.parse import quote

PREFIX = "msgstatus"
GENERATION_KEY = f"{PREFIX}:generation"
"""STRING: the generation the read API serves. Replay writes a new one and switches this."""


def escape(part: str) -> str:
    """Percent-encode a caller-supplied key part; injective, keeps ``+`` and ASCII letters."""
    return quote(part, safe="+-._~@")


MESSAGE_KEY_SUFFIX = "}"
"""What follows the message id in its key (the hash tag's closing brace)."""


def message_key(generation: str, message_id: str) -> str:
    """STRING: the message's rendered document, a newline, then its fold state (schemas.stored)."""
    return f"{message_key_prefix(generation)}{message_id}{MESSAGE_KEY_SUFFIX}"


def message_key_prefix(generation: str) -> str:
    """The message key without its id and :data:`MESSAGE_KEY_SUFFIX` (the list script)."""
    return f"{PREFIX}:{generation}:msg:{{"


def phone_index_key(generation: str, phone: str) -> str:
    """ZSET: message ids sent to an E.164 number, scored by send time (epoch ms)."""
    return f"{PREFIX}:{generation}:phone:{{{escape(phone)}}}"


def reference_index_key(generation: str, reference_key: str) -> str:
    """ZSET: message ids sent under a reference key, scored by send time (epoch ms)."""
    return f"{PREFIX}:{generation}:ref:{{{escape(reference_key)}}}"


def _provider_tag(name: str, provider_id: str) -> str:
    # Provider names match case-insensitively ("Twilio" in an acceptance, "twilio" from the
    # adapter); provider ids are compared as given (adapters normalise them per provider).
    return f"{{{escape(name.lower())}|{escape(provider_id)}}}"


def provider_map_key(generation: str, name: str, provider_id: str) -> str:
    """HASH: our message ids with this provider message id -> ``<sent ms> <expiry ms> <phone>``
    (set by acceptance events; several when the provider reuses its ids:
    projector.provider_routing)."""
    return f"{PREFIX}:{generation}:provs:{_provider_tag(name, provider_id)}"


def parked_key(generation: str, name: str, provider_id: str) -> str:
    """HASH: event id -> record JSON, every receipt that named its message only by this
    provider id (kept for the retention, so a later acceptance can re-route it)."""
    return f"{PREFIX}:{generation}:parked:{_provider_tag(name, provider_id)}"


def positions_key(generation: str) -> str:
    """HASH ``<topic>:<partition>`` -> next offset: how far into the log a generation reflects.

    Written after each batch (and its dead letters); the projector resumes from it, so a
    projection that lost writes (a Redis restart without persistence) is rebuilt, never
    silently incomplete, and one that is ahead of the log is refused.
    """
    return f"{PREFIX}:{generation}:positions"


def generation_pattern(generation: str) -> str:
    """SCAN MATCH pattern of a whole generation (generation ids are ours, never user input)."""
    return f"{PREFIX}:{generation}:*"
