"""Reads within an API key's scope (schemas.tenancy.Scope) over :class:`query_api.reader.Reader`.

A message outside the scope's services reads exactly like an unknown one: ``None`` for a read
by id (404), absent from lists. A key without a service list costs nothing here: the
reader's bytes pass through untouched. Lists of a service-restricted key are filtered, and
refilled from the index until the page is full or the index ends, so a page is never short
while more messages of the scope follow.

The tenant: the projection keeps each tenant's messages, indexes and provider ids under keys
of their own (projection format 2, ``schemas.layout``: ``Layout(generation, buckets,
tenant)``), and the reader reads only the key's tenant's, so another tenant's message is
unknown to it (docs/operations.md, "Tenants, keys and audit").
"""

from __future__ import annotations

from dataclasses import replace

import orjson

from query_api.params import Cursor
from query_api.reader import Reader
from schemas.stored import MessageState
from schemas.tenancy import Scope

LIST_ITEM = b'{"message":'
"""How every listed document starts; JSON strings escape quotes, so counting it counts them."""

MAX_REFILLS = 20
"""Index pages read at most for one list page of a service-restricted key."""


def count_listed(joined: bytes) -> int:
    """The number of documents in a page's joined bytes (without parsing them)."""
    return joined.count(LIST_ITEM)


def _service_of_document(document: bytes) -> str | None:
    reference = orjson.loads(document).get("message", {}).get("reference") or {}
    service = reference.get("service")
    return service if isinstance(service, str) else None


async def document(reader: Reader, scope: Scope, message_id: str) -> bytes | None:
    """The message's document when it is inside ``scope``, else None."""
    found = await reader.document(message_id, scope.tenant)
    if found is None or scope.services is None:
        return found
    return found if scope.allows_service(_service_of_document(found)) else None


async def state(reader: Reader, scope: Scope, message_id: str) -> MessageState | None:
    """The message's fold state (its history) when it is inside ``scope``, else None."""
    found = await reader.state(message_id, scope.tenant)
    if found is None or scope.services is None:
        return found
    acceptance = found.acceptance
    service = acceptance.reference[0] if acceptance and acceptance.reference else None
    return found if scope.allows_service(service) else None


async def page(
    reader: Reader,
    scope: Scope,
    index_key: str,
    *,
    before_ms: int,
    count: int,
    after: Cursor | None,
) -> tuple[bytes, Cursor | None]:
    """Up to ``count`` documents of the scope from an index (``Reader.page``); the next
    cursor carries the scope's tag."""
    tag = scope.tag()
    if scope.services is None:
        joined, cursor = await reader.page(index_key, before_ms, count, after, scope.tenant)
        return joined, cursor if cursor is None or not tag else replace(cursor, tag=tag)
    kept: list[bytes] = []
    cursor = after
    for _ in range(MAX_REFILLS):
        joined, cursor = await reader.page(
            index_key, before_ms, count - len(kept), cursor, scope.tenant
        )
        if joined:
            for item in orjson.loads(b"[" + joined + b"]"):
                reference = item.get("message", {}).get("reference") or {}
                service = reference.get("service")
                if scope.allows_service(service if isinstance(service, str) else None):
                    kept.append(orjson.dumps(item))
        if cursor is None or len(kept) >= count:
            break
    return b",".join(kept), cursor if cursor is None else replace(cursor, tag=tag)
