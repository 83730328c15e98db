"""Push: how fast the notifier delivers, and how soon a change reaches the sender.

Runs ``msgstatus ingest``, ``msgstatus projector`` and ``msgstatus notifier`` as child
processes (one each, WARNING logs) on a fresh topic, generation and notifier namespace; the
receiver is an aiohttp server in this process on 127.0.0.1 (allow-listed), answering 204 to
every delivery and noting when it arrived.

Row 1, deliveries/s: N messages (acceptance naming the receiver, then DELIVERED) are posted
in 100-event webhooks while the notifier is stopped and the projector writes their changes
to the change log; then the notifier starts and the rate from its first to its N-th
delivery is taken. Reference: the ingest's single-event rate (64 concurrent signed
single-event webhooks, each acknowledged by Kafka) measured in the same run, just before.
Target: at least 1x (push must never be the bottleneck; docs/push.md).

Row 2, latency: messages accepted beforehand (with row 1's preload); their DELIVERED
receipts are posted one per webhook at 500/s; for each, the time from ingest's 2xx to the
receiver getting the change.
Target: reported (p99), no fixed bound yet.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from bench.common import BenchError, Ctx, Row, fmt_num, fmt_ratio, free_port, median, percentile
from bench.events import Message, acceptance_event, delivered_event, dumps, make_messages, signed
from bench.events import new_secret as make_secret

NAME = "push"
RATE = 500
CONCURRENCY = 64


class Receiver:
    """Counts deliveries and notes each message's arrival time (monotonic seconds)."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.first = 0.0
        self.runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        """Note the delivery; 204."""
        body = orjson.loads(await request.read())
        now = time.monotonic()
        self.first = self.first or now
        self.arrived.setdefault(body["message"]["id"], now)
        return web.Response(status=204)

    async def start(self, port: int) -> None:
        """Listen on 127.0.0.1:port."""
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", port).start()


def with_webhook(msg: Message, url: str) -> dict[str, Any]:
    """The acceptance of ``msg`` naming ``url`` as its webhook."""
    return {**acceptance_event(msg), "webhook": {"url": url}}


async def post_batches(url: str, secret: str, events: list[dict[str, Any]]) -> None:
    """Post events in 100-event webhooks, 8 at a time; every one must be acknowledged."""
    gate = asyncio.Semaphore(8)
    async with aiohttp.ClientSession() as http:

        async def one(chunk: list[dict[str, Any]]) -> None:
            body = dumps(chunk)
            async with gate, http.post(url, data=body, headers=signed(secret, body)) as resp:
                if resp.status != 202:
                    raise BenchError(f"preload webhook: {resp.status} {await resp.text()}")

        await asyncio.gather(*(one(events[i : i + 100]) for i in range(0, len(events), 100)))


async def ingest_rate(url: str, secret: str, seconds: float) -> float:
    """Single-event webhooks/s with ``CONCURRENCY`` senders (acceptances, no webhook)."""
    deadline = time.monotonic() + seconds
    done = 0
    async with aiohttp.ClientSession() as http:

        async def sender() -> None:
            nonlocal done
            while time.monotonic() < deadline:
                body = dumps(acceptance_event(make_messages(1)[0]))
                async with http.post(url, data=body, headers=signed(secret, body)) as resp:
                    await resp.read()
                    done += resp.status == 202

        started = time.monotonic()
        await asyncio.gather(*(sender() for _ in range(CONCURRENCY)))
    return done / (time.monotonic() - started)


async def wait_for(receiver: Receiver, ids: list[str], limit_s: float) -> None:
    """Wait until every id arrived (BenchError after ``limit_s`` seconds)."""
    deadline = time.monotonic() + limit_s
    while any(i not in receiver.arrived for i in ids):
        if time.monotonic() > deadline:
            missing = sum(i not in receiver.arrived for i in ids)
            raise BenchError(f"{missing} of {len(ids)} deliveries never arrived")
        await asyncio.sleep(0.01)


async def latency(url: str, secret: str, receiver: Receiver, msgs: list[Message]) -> list[float]:
    """Post each DELIVERED at ``RATE``/s; ms from the 2xx to the delivery, per message."""
    acked: dict[str, float] = {}
    t0 = time.monotonic() + 0.5
    async with aiohttp.ClientSession() as http:

        async def one(msg: Message, due: float) -> None:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            body = dumps(delivered_event(msg))
            async with http.post(url, data=body, headers=signed(secret, body)) as resp:
                await resp.read()
                if resp.status == 202:
                    acked[msg.message_id] = time.monotonic()

        await asyncio.gather(*(one(m, t0 + i / RATE) for i, m in enumerate(msgs)))
    await wait_for(receiver, list(acked), 30)
    return [(receiver.arrived[m] - t) * 1000 for m, t in acked.items()]


def run(ctx: Ctx) -> list[Row]:
    """Run the benchmark; see the module docstring."""
    seconds = 4.0 if ctx.quick else 10.0
    secret, signing = make_secret(), make_secret()
    topic, generation, ns = ctx.unique("t"), ctx.unique("p"), ctx.unique("n")[-20:].lower()
    port = free_port()
    hook = f"http://127.0.0.1:{port}/hook"
    receiver = Receiver()
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(receiver.start(port))
        ingest, ingest_url = ctx.start_http_service(
            "ingest", f"{NAME}-ingest", "ingest_port", "/readyz", webhook_secret=secret, topic=topic
        )
        events_url = ingest_url + "/webhooks/events"
        projector = ctx.start_service(
            "projector",
            f"{NAME}-projector",
            topic=topic,
            group_id=ctx.unique("g"),
            generation=generation,
        )
        rate = loop.run_until_complete(ingest_rate(events_url, secret, seconds))
        ctx.log(f"{NAME}: ingest single-event rate {rate:,.0f}/s")
        n = max(1000, int(rate * seconds))
        bulk, later = make_messages(n), make_messages(int(RATE * seconds))
        events = [with_webhook(m, hook) for m in bulk] + [delivered_event(m) for m in bulk]
        # Row 2's acceptances too, so that its receipts meet a projector that is idle.
        events += [with_webhook(m, hook) for m in later]
        loop.run_until_complete(post_batches(events_url, secret, events))
        notifier_env = {
            "topic": topic,
            "namespace": ns,
            "group_id": ctx.unique("ng"),
            "signing_secrets": signing,
            "allow_hosts": "127.0.0.1",
            "endpoint_rate_per_s": 100_000,
            "endpoint_concurrency": 64,
        }
        notifier = ctx.start_service("notifier", f"{NAME}-notifier", **notifier_env)
        ids = [m.message_id for m in bulk]
        loop.run_until_complete(wait_for(receiver, ids, 120))
        last = max(receiver.arrived[i] for i in ids)
        deliveries = (n - 1) / max(last - receiver.first, 1e-9)
        ctx.log(f"{NAME}: {n} deliveries at {deliveries:,.0f}/s")
        took = loop.run_until_complete(latency(events_url, secret, receiver, later))
        p50, p99 = median(took), percentile(took, 99)
        ctx.log(f"{NAME}: 2xx -> delivered p50 {p50:.1f} ms p99 {p99:.1f} ms")
        for child in (ingest, projector, notifier):
            ctx.procs.check_alive(child)
    finally:
        for child in list(ctx.procs.children):
            if child.name.startswith(NAME):
                ctx.procs.stop(child)
        if receiver.runner is not None:
            loop.run_until_complete(receiver.runner.cleanup())
        loop.close()
    ratio = deliveries / rate
    return [
        Row(
            NAME,
            f"push deliveries/s to a healthy local receiver ({n:,} queued changes)",
            fmt_num(deliveries, "/s"),
            f"ingest single events {fmt_num(rate, '/s')}",
            fmt_ratio(ratio),
            ">= 1x",
            ratio >= 1.0,
            note=f"one notifier process; load generator pid {os.getpid()}",
            data={"deliveries_s": deliveries, "ingest_s": rate, "n": n},
        ),
        Row(
            NAME,
            f"push p99, ingest 2xx -> receiver, {RATE} changes/s, {seconds:g}s",
            fmt_num(p99, "ms"),
            "-",
            "-",
            "reported",
            None,
            note=f"p50 {p50:.1f} ms over {len(took):,} changes",
            data={"p50_ms": p50, "p99_ms": p99, "tracked": len(took)},
        ),
    ]
