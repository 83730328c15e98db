"""Which message a receipt belongs to when it names its message only by provider id.

Provider message ids are reused: SMSC ids are counters and wrap, so one (provider, id) pair
can name several of our messages over time. The rule (docs/providers.md, "Provider ids
reused"), a pure function of the set of acceptances seen for that provider id, so the
outcome never depends on arrival order:

1. Candidates are the accepted messages with that provider id whose recipient is the
   receipt's; when the receipt names no recipient, or none of them has it (a number the
   provider wrote in another form, or the acceptance of the right message not seen yet),
   every accepted message with that provider id is a candidate.
2. Of those, the receipt goes to the one with the latest send time not after the receipt's
   ``occurredAt``; if every candidate was sent after it (clocks differ), to the earliest.
   Ties (equal send times) go to the smaller message id.
3. No accepted message has that provider id yet: the receipt waits (parked) until one has.

Every receipt routed by provider id is kept with the provider id (until the retention ends),
so when a later acceptance changes the answer for a receipt already applied, the receipt is
applied to its new message and withdrawn from the others (projector.store).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Candidate:
    """An accepted message with a given provider id: id, send time (epoch ms), E.164 phone,
    and when it leaves the projection (epoch ms)."""

    message_id: str
    sent_ms: int
    phone: str
    expires_ms: int

    def encode(self) -> str:
        """The value stored in the provider id's candidates HASH: ``<sent> <expires> <phone>``."""
        return f"{self.sent_ms} {self.expires_ms} {self.phone}"


def decode_candidates(flat: Sequence[bytes], now_ms: int) -> list[Candidate]:
    """Candidates from an HGETALL reply (``[id, value, id, value, ...]``), expired ones left
    out (their message is gone from the projection)."""
    out = []
    for mid, value in zip(flat[::2], flat[1::2], strict=True):
        sent, expires, phone = value.decode().split(" ", 2)
        if int(expires) > now_ms:
            out.append(Candidate(mid.decode(), int(sent), phone, int(expires)))
    return out


def route(occurred_ms: int, phone: str | None, candidates: Iterable[Candidate]) -> str | None:
    """The message id a receipt (its ``occurredAt`` and recipient) belongs to under the rule
    of the module docstring, or None when there is no candidate."""
    every = list(candidates)
    matching = [c for c in every if c.phone == phone] or every
    if not matching:
        return None
    before = [c for c in matching if c.sent_ms <= occurred_ms]
    pool = before or matching
    sent = max(c.sent_ms for c in pool) if before else min(c.sent_ms for c in pool)
    return min(c.message_id for c in pool if c.sent_ms == sent)
