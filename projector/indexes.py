"""Phone and reference indexes: the commands that keep them in step with the messages.

Index entries are plain ZSET members (message id, scored by send time) without a TTL of
their own: the expiry sweep removes them with their message (projector.sweep), and the list
read skips and removes any whose message is gone. Writing them is idempotent, and happens
every time an acceptance is seen, so a crash between a message's write and its index entry
heals on redelivery. Nothing here talks to Redis.
"""

from __future__ import annotations

from typing import Any

from schemas.layout import Layout
from schemas.stored import Acceptance


def parts(acc: Acceptance) -> set[tuple[str, str]]:
    """(kind, value) of the index entries an acceptance gives a message: phone, reference key."""
    out = {("p", acc.phone)}
    if acc.reference is not None and acc.reference[2]:
        out.add(("r", acc.reference[2]))
    return out


def add_commands(layout: Layout, message_id: str, acc: Acceptance) -> list[tuple[Any, ...]]:
    """ZADD the message to the indexes its acceptance names."""
    return [
        ("ZADD", layout.index_key(kind, value), acc.occurred_ms, message_id)
        for kind, value in sorted(parts(acc))
    ]


def displaced_commands(
    layout: Layout, message_id: str, old: Acceptance | None, new: Acceptance
) -> list[tuple[Any, ...]]:
    """ZREM the entries of an acceptance that an earlier one displaced."""
    if old is None or old == new:
        return []
    return [
        ("ZREM", layout.index_key(kind, value), message_id)
        for kind, value in sorted(parts(old) - parts(new))
    ]


def remove_commands(layout: Layout, message_id: str, acc: Acceptance) -> list[tuple[Any, ...]]:
    """ZREM an expired message from its indexes (an emptied ZSET disappears)."""
    return [
        ("ZREM", layout.index_key(kind, value), message_id) for kind, value in sorted(parts(acc))
    ]
