"""Ingest under overload: offered twice its capacity, it keeps its goodput and loses nothing.

Runs ``msgstatus ingest`` (one process, default settings, WARNING logs) on a fresh topic.

1. **Capacity at the knee** (closed loop, ``wrk -t1``): 100-event bodies on 32 connections
   (3,200 events in flight, below the default admission bound, so nothing is shed while
   capacity is measured) and single events on 64 connections; accepted events/s of each.
2. **100-event bodies at twice that capacity** for ``OVERLOAD_S`` seconds (``--quick``
   8 s): this process sends distinct pre-signed bodies open loop (each due at a fixed time,
   ``2 x capacity / 100`` per second) over 64 connections, and records every answer: its
   status, its latency and, for a 202, the message ids it acknowledged.
3. **Single events offered as fast as 64 connections can** (``wrk -c64`` for the same time):
   64 connections can never put more than 64 events in flight, so this shows the bound is
   not in the way of single-event traffic.
4. Then ``msgstatus projector`` and ``msgstatus api`` start on the topic, and every message
   acknowledged in step 2 must become readable by id (``GET /api/messagestatus/{id}``),
   within a bounded wait (a seeded sample of ``CHECKED`` when more were acknowledged); the
   ingest's ``/metrics`` must show no publish timeout and no producer replacement.

Targets (docs/design.md §7): accepted events/s at least 0.9x the capacity, zero publish
timeouts, every shed request answered 503 + Retry-After in under 10 ms (the maximum, as
this process measured it, client overhead included), every 2xx event readable afterwards.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
import urllib.request
from dataclasses import dataclass, field

import aiohttp

from bench import wrk
from bench.common import Ctx, Row, fmt_num, fmt_ratio, percentile, wait_until
from bench.events import acceptance_event, dumps, make_messages, new_secret, signed
from bench.ingest import Scripts, batch_bodies, post_once, single_bodies

NAME = "overload"
BATCH = 100
CONNECTIONS = 64
KNEE_CONNECTIONS = 32
OVERLOAD_S = 30.0
QUICK_OVERLOAD_S = 8.0
SHED_TARGET_MS = 10.0
READ_WORKERS = 64
READABLE_WITHIN_S = 300.0
CHECKED = 5_000
"""Acknowledged messages read back by id: a seeded sample this large (all when fewer), so
the check costs seconds, not minutes, at tens of thousands of acknowledged messages."""


@dataclass
class Outcome:
    """What the open-loop sender saw."""

    offered: int = 0
    late_ms: list[float] = field(default_factory=list)
    accepted_ids: list[str] = field(default_factory=list)
    accepted_ms: list[float] = field(default_factory=list)
    shed_ms: list[float] = field(default_factory=list)
    shed_without_retry_after: int = 0
    other: dict[int, int] = field(default_factory=dict)
    first: float = 0.0
    last: float = 0.0


def _bodies(count: int, secret: str) -> list[tuple[bytes, dict[str, str], list[str]]]:
    """``count`` distinct signed bodies of ``BATCH`` acceptances: (body, headers, ids)."""
    out = []
    for _ in range(count):
        msgs = make_messages(BATCH)
        body = dumps([acceptance_event(m) for m in msgs])
        out.append((body, signed(secret, body), [m.message_id for m in msgs]))
    return out


async def _send_open_loop(url: str, secret: str, rate: float, seconds: float) -> Outcome:
    """Send ``rate`` bodies/s for ``seconds`` over ``CONNECTIONS`` connections, open loop."""
    slots = _bodies(int(rate * seconds), secret)
    outcome = Outcome(offered=len(slots))
    next_slot = 0
    connector = aiohttp.TCPConnector(limit=CONNECTIONS, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as http:
        t0 = time.monotonic() + 0.5

        async def worker() -> None:
            nonlocal next_slot
            while next_slot < len(slots):
                index = next_slot
                next_slot += 1
                due = t0 + index / rate
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                else:
                    outcome.late_ms.append(-delay * 1000)
                body, headers, ids = slots[index]
                started = time.monotonic()
                async with http.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    status, retry_after = resp.status, resp.headers.get("Retry-After")
                took = (time.monotonic() - started) * 1000
                outcome.last = time.monotonic()
                if status == 202:
                    outcome.accepted_ids += ids
                    outcome.accepted_ms.append(took)
                elif status == 503:
                    outcome.shed_ms.append(took)
                    outcome.shed_without_retry_after += retry_after is None
                else:
                    outcome.other[status] = outcome.other.get(status, 0) + 1

        outcome.first = t0
        await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))
    return outcome


async def _unreadable(api_url: str, api_key: str, ids: list[str], within_s: float) -> int:
    """How many of ``ids`` are still not readable by id after ``within_s`` seconds."""
    pending = list(ids)
    deadline = time.monotonic() + within_s
    headers = {"X-Api-Key": api_key}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=READ_WORKERS)) as http:
        while pending and time.monotonic() < deadline:
            missing: list[str] = []

            async def check(chunk: list[str], missing: list[str] = missing) -> None:
                for message_id in chunk:
                    url = f"{api_url}/api/messagestatus/{message_id}"
                    async with http.get(url, headers=headers) as resp:
                        await resp.read()
                        if resp.status != 200:
                            missing.append(message_id)

            chunks = [pending[i::READ_WORKERS] for i in range(READ_WORKERS)]
            await asyncio.gather(*(check(c) for c in chunks))
            pending = missing
            if pending:
                await asyncio.sleep(1.0)
    return len(pending)


_SAMPLE = re.compile(r"^(msgstatus_[a-z_]+_total)(\{[^}]*\})? ([0-9.e+]+)$", re.MULTILINE)


def _counter(metrics_text: str, name: str, label: str = "") -> float:
    """Sum of a counter's samples in a Prometheus text page (those whose labels hold
    ``label``)."""
    return sum(
        float(value)
        for metric, labels, value in _SAMPLE.findall(metrics_text)
        if metric == name and label in (labels or "")
    )


def _metrics(url: str) -> str:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as resp:  # noqa: S310 - loopback
        return str(resp.read().decode())


_IN_FLIGHT = re.compile(r"^msgstatus_events_in_flight ([0-9.e+]+)$", re.MULTILINE)


def _drained(url: str) -> None:
    """Wait until the ingest has no event in flight: wrk ends a run by dropping connections
    whose requests the service still publishes, and those count against the bound."""
    wait_until(
        lambda: float((_IN_FLIGHT.findall(_metrics(url)) or ["0"])[0]) == 0,
        30,
        "the ingest's events in flight to drain",
        step=0.1,
    )


def run(ctx: Ctx) -> list[Row]:
    """Run the benchmark; see the module docstring."""
    secret = new_secret()
    api_key = ctx.unique("key")
    topic = ctx.unique("t")
    generation = ctx.unique("g")
    seconds = QUICK_OVERLOAD_S if ctx.quick else OVERLOAD_S
    ingest, ingest_url = ctx.start_http_service(
        "ingest", f"{NAME}-ingest", "ingest_port", "/readyz", webhook_secret=secret, topic=topic
    )
    scripts = Scripts(
        ctx.log_dir, secret, {"single": single_bodies(2000), "batch": batch_bodies(20, BATCH)}
    )
    post = ingest_url + "/webhooks/events"
    post_once(post, secret, scripts.bodies["batch"][0])  # the topic's leaders are elected
    wrk.run(post, 1, connections=KNEE_CONNECTIONS, script=scripts.get("batch"), max_bad_share=1)
    _drained(ingest_url)
    knee_batch = wrk.run(
        post, ctx.duration_s, connections=KNEE_CONNECTIONS, script=scripts.get("batch")
    )
    _drained(ingest_url)
    knee_single = wrk.run(
        post, ctx.duration_s, connections=CONNECTIONS, script=scripts.get("single")
    )
    _drained(ingest_url)
    capacity = knee_batch.rps * BATCH
    ctx.log(
        f"{NAME}: capacity 100-event bodies {capacity:,.0f} events/s ({knee_batch}), "
        f"single {knee_single.rps:,.0f} events/s; offering {2 * capacity:,.0f} events/s "
        f"for {seconds:g}s"
    )
    outcome = asyncio.run(_send_open_loop(post, secret, 2 * capacity / BATCH, seconds))
    _drained(ingest_url)
    single = wrk.run(
        post, seconds, connections=CONNECTIONS, script=scripts.get("single"), max_bad_share=1.0
    )
    page = _metrics(ingest_url)
    timeouts = _counter(page, "msgstatus_publish_failures_total", 'reason="timeout"')
    replaced = _counter(page, "msgstatus_producer_replacements_total")
    ctx.start_service(
        "projector", f"{NAME}-projector", topic=topic, generation=generation,
        group_id=ctx.unique("grp"),
    )  # fmt: skip
    api, api_url = ctx.start_http_service(
        "api", f"{NAME}-api", "api_port", "/healthz", topic=topic, generation=generation,
        api_keys=api_key,
    )  # fmt: skip
    sample = outcome.accepted_ids
    if len(sample) > CHECKED:
        sample = random.Random(20261130).sample(sample, CHECKED)
    unreadable = asyncio.run(_unreadable(api_url, api_key, sample, READABLE_WITHIN_S))
    ctx.procs.stop(api)
    ctx.procs.stop(ingest)
    measured = Measured(
        capacity, knee_single.rps, seconds, outcome, single, timeouts, replaced, unreadable
    )
    return _rows(measured)


@dataclass(frozen=True)
class Measured:
    """Everything one run measured (rates in events/s)."""

    capacity: float
    single_capacity: float
    seconds: float
    outcome: Outcome
    single: wrk.WrkResult
    timeouts: float
    replaced: float
    unreadable: int


def _rows(m: Measured) -> list[Row]:
    capacity, single_capacity, seconds = m.capacity, m.single_capacity, m.seconds
    outcome, single, timeouts, replaced, unreadable = (
        m.outcome, m.single, m.timeouts, m.replaced, m.unreadable
    )  # fmt: skip
    span = max(outcome.last - outcome.first, seconds)
    accepted = len(outcome.accepted_ids) / span
    offered = outcome.offered * BATCH / span
    shed_max = max(outcome.shed_ms, default=0.0)
    shed_p99 = percentile(outcome.shed_ms, 99)
    ratio = accepted / capacity if capacity else float("nan")
    late = percentile(outcome.late_ms, 99) if outcome.late_ms else 0.0
    errors = dict(outcome.other)
    met = (
        ratio >= 0.9
        and timeouts == 0
        and shed_max < SHED_TARGET_MS
        and outcome.shed_without_retry_after == 0
        and unreadable == 0
        and not errors
    )
    single_accepted = (single.requests - single.non2xx) / seconds
    return [
        Row(
            NAME,
            "ingest under overload: 100-event bodies offered at 2x capacity, accepted events/s",
            fmt_num(accepted),
            fmt_num(capacity) + " (capacity at the knee, 32 connections)",
            fmt_ratio(ratio),
            ">= 0.9x, 0 timeouts, shed < 10 ms, all 2xx readable",
            met,
            note=(
                f"Offered {fmt_num(offered)} events/s for {seconds:g} s on {CONNECTIONS} "
                f"connections ({outcome.offered} bodies; sender late p99 {late:.1f} ms); "
                f"{len(outcome.accepted_ms)} answered 202 (p50 "
                f"{percentile(outcome.accepted_ms, 50):.1f} ms, p99 "
                f"{percentile(outcome.accepted_ms, 99):.1f} ms), {len(outcome.shed_ms)} shed "
                f"with 503 (p99 {shed_p99:.1f} ms, max {shed_max:.1f} ms, "
                f"{outcome.shed_without_retry_after} without Retry-After), other answers "
                f"{errors or 'none'}; publish timeouts {timeouts:g}, producer replacements "
                f"{replaced:g}; acknowledged messages not readable afterwards: {unreadable} "
                f"of {min(CHECKED, len(outcome.accepted_ids))} read back (a seeded sample of "
                f"the {len(outcome.accepted_ids)} acknowledged)."
            ),
            data={
                "offered_events_s": offered,
                "accepted_events_s": accepted,
                "capacity_events_s": capacity,
                "shed": len(outcome.shed_ms),
                "shed_p99_ms": shed_p99,
                "shed_max_ms": shed_max,
                "timeouts": timeouts,
                "replacements": replaced,
                "unreadable": unreadable,
            },
        ),
        Row(
            NAME,
            "ingest under overload: single events, 64 connections flat out, accepted events/s",
            fmt_num(single_accepted),
            fmt_num(single_capacity) + " (single-event capacity)",
            fmt_ratio(single_accepted / single_capacity if single_capacity else float("nan")),
            ">= 0.9x",
            single_capacity > 0 and single_accepted >= 0.9 * single_capacity,
            note=(
                f"{single}. 64 connections put at most 64 events in flight, far below the "
                "admission bound, so nothing is shed: single events are limited by the "
                "service's per-request cost, not by the bound."
            ),
        ),
    ]
