"""The delivery loop: claim due deliveries, attempt each in its endpoint's lane, settle.

Outcomes (docs/push.md): 2xx delivered; 410 disables the endpoint; a refused address is
dead-lettered at once; anything else (3xx, 4xx, 5xx, timeouts, connection errors) is tried
again on the schedule, honouring ``Retry-After``, and dead-lettered after the last attempt.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import Any
from urllib.parse import urlsplit

from redis.exceptions import RedisError

from notifier import metrics as m
from notifier.endpoints import Directory
from notifier.isolation import Lanes
from notifier.schedule import next_delay_s
from notifier.sender import Result, Sender
from notifier.settings import NotifierSettings
from notifier.state import Claimed, State
from schemas.changes import now_ms
from schemas.deliveries import Attempt
from schemas.deliveries import Outcome as OutcomeName

log = logging.getLogger(__name__)

DISABLED_REFRESH_S = 2.0


class Dispatcher:
    """Runs until ``stop`` is set; in-flight attempts are awaited on the way out (bounded)."""

    def __init__(
        self, settings: NotifierSettings, state: State, directory: Directory, sender: Sender
    ) -> None:
        self.s = settings
        self.state = state
        self.directory = directory
        self.sender = sender
        self.lanes = Lanes(
            settings.endpoint_concurrency,
            settings.endpoint_rate_per_s,
            settings.breaker_failures,
            settings.breaker_open_s,
        )
        self.tasks: set[asyncio.Task[None]] = set()
        self.kick = asyncio.Event()
        """Set by the intake when it queued deliveries: claim now instead of after the pause."""
        self._disabled: set[str] = set()
        self._disabled_at = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        """Claim and dispatch until ``stop``; Redis errors are retried with a pause."""
        while not stop.is_set():
            room = self.s.max_connections - len(self.tasks)
            try:
                claimed = await self._claim(room) if room > 0 else []
            except (RedisError, OSError) as exc:
                log.warning("claiming deliveries failed, retrying: %s", type(exc).__name__)
                claimed = []
            if not claimed:
                await self._pause(stop)
                continue
            for c in claimed:
                self._dispatch(c)
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=self.s.shutdown_timeout_s)

    async def _pause(self, stop: asyncio.Event) -> None:
        """Wait ``idle_poll_s``, or less when stopped or kicked by the intake."""
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self.kick.wait())]
        await asyncio.wait(waiters, timeout=self.s.idle_poll_s, return_when="FIRST_COMPLETED")
        for waiter in waiters:
            waiter.cancel()
        self.kick.clear()

    async def _claim(self, room: int) -> list[Claimed]:
        now = now_ms()
        claimed = await self.state.claim(
            now, int(self.s.lease_s * 1000), min(room, self.s.claim_batch)
        )
        if time.monotonic() - self._disabled_at > DISABLED_REFRESH_S:
            self._disabled = await self.state.disabled()
            self._disabled_at = time.monotonic()
        ages: dict[str, float] = {}
        for c in claimed:
            age = (now - c.delivery.created_ms) / 1000
            ages[c.delivery.endpoint] = max(age, ages.get(c.delivery.endpoint, 0.0))
        for endpoint, age in ages.items():
            m.QUEUE_AGE.labels(endpoint).set(age)
        return claimed

    def _dispatch(self, c: Claimed) -> None:
        d = c.delivery
        if d.endpoint in self._disabled:
            self._spawn(self._end_unattempted(c, "gone"))
            return
        lane = self.lanes.get(d.endpoint)
        wait = lane.wait_s(time.monotonic())
        if wait > 0:
            m.POSTPONED.labels("circuit" if lane.is_open else "limit").inc()
            self._spawn(self.state.postpone(c, now_ms() + max(20, int(wait * 1000))))
            return
        self._spawn(self._attempt(c))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self._reap)

    def _reap(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            if isinstance(exc, RedisError | OSError):
                # The lease runs out and the delivery is claimed again: nothing is lost.
                log.warning("settling a delivery failed: %s", type(exc).__name__)
            else:
                log.error("delivery task failed", exc_info=exc)

    def _secrets(self, c: Claimed) -> tuple[str, ...]:
        d = c.delivery
        configured = self.directory.by_id(d.endpoint)
        if configured is not None:
            return configured.secrets
        return self.directory.secrets_for(d.url)

    async def _attempt(self, c: Claimed) -> None:
        d = c.delivery
        lane = self.lanes.get(d.endpoint)
        ok = False
        try:
            result = await self.sender.attempt(d, self._secrets(c))
            ok = result.ok or result.refused  # a refusal says nothing about the endpoint
        finally:
            lane.done(ok, time.monotonic())
        m.CIRCUIT_OPEN.labels(d.endpoint).set(1 if lane.is_open else 0)
        m.LATENCY.observe(result.latency_ms / 1000)
        await self._settle(c, result)

    async def _settle(self, c: Claimed, result: Result) -> None:
        d = c.delivery
        now = now_ms()
        retry_at: int | None = None
        outcome: OutcomeName
        if result.ok:
            outcome, reason = "delivered", "delivered"
            m.EMIT_TO_DELIVERED.observe(max(0, now - d.created_ms) / 1000)
        elif result.http_status == 410:
            outcome, reason = "gone", "gone"
        elif result.refused:
            outcome, reason = "refused", "dead"
            m.REFUSED.inc()
        else:
            delay = next_delay_s(
                self.s.retry_schedule_s,
                d.attempts + 1,
                self.s.retry_jitter,
                result.retry_after_s,
                self.s.retry_after_max_s,
            )
            if delay is None:
                outcome, reason = "dead", "dead"
            else:
                outcome, reason, retry_at = "retry", "retry", now + int(delay * 1000)
        m.ATTEMPTS.labels(d.endpoint, outcome).inc()
        attempt = self._record(c, now, outcome, result)
        mine = await self.state.finish(c, attempt, retry_at_ms=retry_at, reason=reason)
        if outcome == "gone":
            await self.state.disable(d.endpoint, f"410 Gone at {now}")
            log.warning("endpoint %s answered 410 Gone: disabled", d.endpoint)
        if outcome in ("gone", "refused", "dead") and mine:
            m.DEAD.labels(outcome).inc()
            await self.state.dead_letter(d, outcome)
            log.warning("gave up delivery %s to %s: %s", d.webhook_id, d.endpoint, outcome)

    def _record(self, c: Claimed, now: int, outcome: OutcomeName, result: Result) -> Attempt:
        d = c.delivery
        return Attempt(
            at=now,
            endpoint=d.endpoint,
            host=_host(d.url),
            sequence=d.sequence,
            webhookId=d.webhook_id,
            httpStatus=result.http_status,
            latencyMs=round(result.latency_ms, 1),
            error=result.error,
            outcome=outcome,
        )

    async def _end_unattempted(self, c: Claimed, reason: str) -> None:
        d = c.delivery
        attempt = Attempt(
            at=now_ms(),
            endpoint=d.endpoint,
            host=_host(d.url),
            sequence=d.sequence,
            webhookId=d.webhook_id,
            outcome="gone",
            error="EndpointDisabled",
        )
        await self.state.finish(c, attempt, retry_at_ms=None, reason=reason)


def _host(url: str) -> str:
    return urlsplit(url).hostname or ""
