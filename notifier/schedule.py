"""When to try again: the retry schedule with jitter, and the receiver's ``Retry-After``."""

from __future__ import annotations

import random
from collections.abc import Sequence
from email.utils import parsedate_to_datetime


def next_delay_s(
    schedule: Sequence[float],
    attempts_made: int,
    jitter: float,
    retry_after_s: float | None = None,
    retry_after_max_s: float = 43_200.0,
) -> float | None:
    """Seconds until the next attempt after ``attempts_made`` attempts, or None after the last.

    The ``attempts_made``-th step of ``schedule``, spread by +-``jitter`` (a share) so that
    many deliveries failing together do not retry together; never sooner than the receiver's
    ``Retry-After`` (capped at ``retry_after_max_s``).
    """
    if attempts_made > len(schedule):
        return None
    base = schedule[attempts_made - 1] if attempts_made > 0 else 0.0
    delay = base * random.uniform(1 - jitter, 1 + jitter)  # noqa: S311 - jitter, not security
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, retry_after_max_s))
    return delay


def parse_retry_after(value: str | None, now_s: float) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; None if absent/bad."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now_s)
