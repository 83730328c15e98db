"""The status model of docs/design.md §2: statuses, channels, ranks and the tie order."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """Canonical delivery status (seed document, "status" field)."""

    PROVIDER_ACCEPTANCE = "PROVIDER_ACCEPTANCE"
    SENT = "SENT"
    REJECTED = "REJECTED"
    UNDELIVERED = "UNDELIVERED"
    DELIVERED = "DELIVERED"
    READ = "READ"


class Channel(StrEnum):
    """Delivery channel (seed document, "channel" field)."""

    SMS = "SMS"
    RCS = "RCS"


RANK: dict[Status, int] = {
    Status.PROVIDER_ACCEPTANCE: 0,
    Status.SENT: 1,
    Status.REJECTED: 2,
    Status.UNDELIVERED: 2,
    Status.DELIVERED: 3,
    Status.READ: 4,
}
"""docs/design.md §2: a handset receipt outweighs a failure report; READ implies DELIVERED."""

TIE_ORDER: dict[Status, int] = {
    Status.PROVIDER_ACCEPTANCE: 0,
    Status.SENT: 0,
    Status.REJECTED: 0,
    Status.UNDELIVERED: 1,
    Status.DELIVERED: 0,
    Status.READ: 0,
}
"""Between two events of equal rank and equal ``occurredAt`` the higher value wins.

Only REJECTED and UNDELIVERED share a rank; UNDELIVERED wins the tie because a failure
report from the handset side is the later stage of the pipeline than a refusal.
Remaining ties (same status, same instant) are decided by the provider status, code and
message strings, compared as text: never by arrival order.
"""

STATUS_CODE: dict[Status, int] = {
    Status.PROVIDER_ACCEPTANCE: 0,
    Status.SENT: 1,
    Status.REJECTED: 2,
    Status.UNDELIVERED: 3,
    Status.DELIVERED: 4,
    Status.READ: 5,
}
"""Compact code of each status, used in the stored state (schemas.stored)."""

STATUS_BY_CODE: dict[int, Status] = {code: status for status, code in STATUS_CODE.items()}
