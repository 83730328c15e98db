"""What applying one batch did: counts for metrics, refusals for the dead-letter topic."""

from __future__ import annotations

from dataclasses import dataclass, field

from projector.logdecode import Event
from schemas.changes import ChangeRecord
from schemas.stored import HistoryEntry


@dataclass(frozen=True, slots=True)
class Refusal:
    """An event the projection can never apply, with the reason, for the dead-letter topic."""

    message_id: str
    reason: str
    record: Event | None
    entry: HistoryEntry | None = None


@dataclass(slots=True)
class ApplyReport:
    """What one batch did: counts for metrics and the refusals to dead-letter."""

    applied: int = 0
    written: int = 0
    parked: int = 0
    refusals: list[Refusal] = field(default_factory=list)
    new_partitions: list[int] = field(default_factory=list)
    """Partitions the served generation had no recorded position for before this batch."""
    changes: list[ChangeRecord] = field(default_factory=list)
    """Messages whose current status this batch may have set (projector.changes.detect)."""
