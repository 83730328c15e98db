"""Per-endpoint isolation: a concurrency cap, a token-bucket rate limit and a circuit breaker.

Each endpoint has its own, so a dead or slow endpoint only ever waits on itself: its
deliveries are put back on the schedule instead of holding a worker (docs/push.md).
State is per process and in memory; the schedule itself is in Redis.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Lane:
    """One endpoint's limits. Times are ``time.monotonic()`` seconds."""

    concurrency: int
    rate_per_s: float
    breaker_failures: int
    breaker_open_s: float
    in_flight: int = 0
    tokens: float = field(default=0.0)
    refilled: float = field(default_factory=time.monotonic)
    failures: int = 0
    open_until: float = 0.0
    trial: bool = False

    def __post_init__(self) -> None:
        self.tokens = max(1.0, self.rate_per_s)

    def wait_s(self, now: float) -> float:
        """0 when a delivery may start now (and takes a slot and a token), else how long to
        wait: until the circuit half-opens, a token refills, or (at the cap) a short while."""
        if now < self.open_until:
            return self.open_until - now
        if self.failures >= self.breaker_failures and self.trial:
            return self.breaker_open_s / 10  # half-open: one trial at a time
        if self.in_flight >= self.concurrency:
            return 0.05
        self.tokens = min(
            max(1.0, self.rate_per_s), self.tokens + (now - self.refilled) * self.rate_per_s
        )
        self.refilled = now
        if self.tokens < 1.0:
            return (1.0 - self.tokens) / self.rate_per_s
        self.tokens -= 1.0
        self.in_flight += 1
        if self.failures >= self.breaker_failures:
            self.trial = True
        return 0.0

    def done(self, ok: bool, now: float) -> None:
        """Release the slot; count a failure towards opening the circuit, or close it."""
        self.in_flight -= 1
        self.trial = False
        if ok:
            self.failures = 0
            return
        self.failures += 1
        if self.failures >= self.breaker_failures:
            self.open_until = now + self.breaker_open_s

    @property
    def is_open(self) -> bool:
        """True while the circuit is open (for the metrics)."""
        return time.monotonic() < self.open_until


class Lanes:
    """The lanes of all endpoints, created on first use with the configured limits."""

    def __init__(
        self, concurrency: int, rate_per_s: float, breaker_failures: int, breaker_open_s: float
    ) -> None:
        self._args = (concurrency, rate_per_s, breaker_failures, breaker_open_s)
        self.lanes: dict[str, Lane] = {}

    def get(self, endpoint: str) -> Lane:
        """The lane of ``endpoint``."""
        lane = self.lanes.get(endpoint)
        if lane is None:
            lane = self.lanes[endpoint] = Lane(*self._args)
        return lane
