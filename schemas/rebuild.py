"""The rebuild marker: which partitions the projector is folding again from the start of the log.

The projector writes it, the read API reads it for ``/readyz`` (docs/operations.md "Health,
metrics, logs"; docs/reliability.md). One HASH per generation, ``msgstatus:rebuild:<g>``,
outside the generation's own keys (``msgstatus:<g>:*``): it describes the projection, it is
no part of it, so a replay builds a generation without one.

- field ``<topic>:<partition>`` -> ``"<position> <target>"``: a rebuild of that partition is
  under way; ``position`` is the next offset the projection reflects, ``target`` the end of
  the log when the rebuild began. The field is deleted when the position reaches the target.
- field ``projector`` -> epoch ms of the last time a projector (re)wrote the hash. It keeps
  the hash in existence while nothing is rebuilt, so a reader that saw it and then finds it
  gone knows that Redis lost the projection (a restart without persistence, a flush) before
  the projector noticed.

A partition is rebuilt when the projection records no position for it while the log holds
records (Redis lost it, or the projection never had it), not when a projector merely resumes
behind the log: that is ordinary lag (``msgstatus_projector_lag``).
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.keys import PREFIX

SENTINEL = b"projector"


def rebuild_key(generation: str) -> str:
    """HASH: partitions being rebuilt -> ``"<position> <target>"``, plus the sentinel field."""
    return f"{PREFIX}:rebuild:{generation}"


def field(topic: str, partition: int) -> str:
    """The hash field of one partition of the event log."""
    return f"{topic}:{partition}"


def value(position: int, target: int) -> str:
    """The hash value: where the rebuild is and where it ends."""
    return f"{position} {target}"


@dataclass(frozen=True)
class Progress:
    """A rebuild of one partition: the next offset folded and the offset it ends at."""

    partition: str
    position: int
    target: int

    @property
    def behind(self) -> int:
        """Records the rebuild of this partition still has to fold."""
        return max(0, self.target - self.position)


def parse(marker: dict[bytes, bytes]) -> list[Progress]:
    """The partitions a marker (``HGETALL``) names as rebuilding; malformed fields are skipped."""
    out = []
    for name, raw in marker.items():
        if name == SENTINEL:
            continue
        try:
            position, target = (int(x) for x in raw.split())
        except ValueError:
            continue
        out.append(Progress(name.decode(errors="replace"), position, target))
    return sorted(out, key=lambda p: p.partition)
