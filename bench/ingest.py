"""Ingest of canonical webhooks: ``msgstatus ingest`` against a bare aiohttp JSON handler.

Measures requests/s of ``POST /webhooks/events`` on the real ingest service (one process,
WARNING log level, Standard Webhooks signatures checked, every event acknowledged by Kafka
with acks=all before the 202) with

* single events: 2,000 distinct pre-signed bodies (1,000 messages: acceptance with phone,
  reference and segments, then DELIVERED), cycled by a wrk Lua script;
* 100-event batches: 20 distinct pre-signed arrays of 100 such events (events/s = 100 x
  requests/s);

against :mod:`bench.reference_servers` ``json-post`` (one process: read the body, orjson
parse, 202) fed the same requests. The signatures are made when the scripts are written
(the 5-minute timestamp tolerance is far longer than a run) and renewed every 2 minutes.

The ingest runs with admission control out of the way (``MAX_EVENTS_IN_FLIGHT`` 1,000,000):
these rows measure capacity; :mod:`bench.overload` measures the bound.

Load: ``wrk -t1 -c64``, the variants alternating (order reversed every round) for
``rounds`` rounds; the load generator shares the cores with the server, Kafka and Redis.

Targets: single events at least 0.3x the bare handler's requests/s; 100-event batches at
least 3x our single-event rate in events/s.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from bench import wrk
from bench.common import BenchError, Ctx, Row, fmt_num, fmt_ratio, fmt_ratios, interleaved, median
from bench.common import ratios as paired_ratios
from bench.events import (
    acceptance_event,
    delivered_event,
    dumps,
    make_messages,
    new_secret,
    signed,
)

NAME = "ingest"
CONNECTIONS = 64
SINGLE_BODIES = 2000
BATCH = 100
BATCH_BODIES = 20
RESIGN_AFTER_S = 120


def single_bodies(count: int) -> list[bytes]:
    """``count`` single-event bodies: acceptance and DELIVERED of ``count / 2`` messages."""
    out = []
    for msg in make_messages(count // 2):
        out += [dumps(acceptance_event(msg)), dumps(delivered_event(msg))]
    return out


def batch_bodies(count: int, size: int) -> list[bytes]:
    """``count`` arrays of ``size`` events (acceptances first, then their receipts)."""
    out = []
    for _ in range(count):
        msgs = make_messages(size // 2)
        out.append(dumps([acceptance_event(m) for m in msgs] + [delivered_event(m) for m in msgs]))
    return out


class Scripts:
    """wrk Lua scripts of signed requests, re-signed when they get old."""

    def __init__(self, directory: Path, secret: str, bodies: dict[str, list[bytes]]) -> None:
        self.directory = directory
        self.secret = secret
        self.bodies = bodies
        self.made = 0.0
        self.paths: dict[str, Path] = {}

    def get(self, kind: str) -> Path:
        """The script of ``kind`` (``single`` or ``batch``), signed at most 2 minutes ago."""
        if time.monotonic() - self.made > RESIGN_AFTER_S:
            for name, bodies in self.bodies.items():
                reqs = [(signed(self.secret, body), body) for body in bodies]
                path = self.directory / f"ingest-{name}.lua"
                self.paths[name] = wrk.post_script(path, "/webhooks/events", reqs)
            self.made = time.monotonic()
        return self.paths[kind]


def post_once(url: str, secret: str, body: bytes) -> dict[str, object]:
    """One signed POST that must be answered 202; returns the parsed answer."""
    req = urllib.request.Request(url, data=body, headers=signed(secret, body), method="POST")  # noqa: S310
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback
        if resp.status != 202:
            raise BenchError(f"POST {url}: {resp.status}")
        return dict(json.loads(resp.read()))


def run(ctx: Ctx) -> list[Row]:
    """Run the benchmark; see the module docstring."""
    secret = new_secret()
    topic = ctx.unique("t")
    children = []
    try:
        # Capacity, not admission: 64 connections x 100 events exceed the default bound on
        # events in flight, which the overload module measures on its own.
        child, ingest_url = ctx.start_http_service(
            "ingest",
            f"{NAME}-ingest",
            "ingest_port",
            "/readyz",
            webhook_secret=secret,
            topic=topic,
            max_events_in_flight=1_000_000,
        )
        children.append(child)
        child, ref_url = ctx.start_reference("json-post", f"{NAME}-reference")
        children.append(child)
        bodies = {
            "single": single_bodies(SINGLE_BODIES),
            "batch": batch_bodies(BATCH_BODIES, BATCH),
        }
        ctx.log(
            f"{NAME}: single bodies ~{len(bodies['single'][0])} B, "
            f"batch bodies ~{len(bodies['batch'][0]) // 1024} KiB; "
            f"ingest {ingest_url}, bare {ref_url}"
        )
        for url in (ingest_url, ref_url):
            assert post_once(url + "/webhooks/events", secret, bodies["single"][0])["accepted"] == 1
            answer = post_once(url + "/webhooks/events", secret, bodies["batch"][0])
            assert answer["accepted"] == BATCH, answer
        scripts = Scripts(ctx.log_dir, secret, bodies)

        def load(url: str, kind: str, seconds: float) -> Callable[[], wrk.WrkResult]:
            return lambda: wrk.run(
                url + "/webhooks/events", seconds, connections=CONNECTIONS, script=scripts.get(kind)
            )

        for url in (ingest_url, ref_url):
            for kind in ("single", "batch"):
                load(url, kind, 1)()
        results = interleaved(
            ctx.rounds,
            {
                "ours single": load(ingest_url, "single", ctx.duration_s),
                "bare single": load(ref_url, "single", ctx.duration_s),
                "ours batch": load(ingest_url, "batch", ctx.duration_s),
                "bare batch": load(ref_url, "batch", ctx.duration_s),
            },
            ctx.log,
        )
    finally:
        for child in children:
            ctx.procs.stop(child)
    ours_single = [r.rps for r in results["ours single"]]
    bare_single = [r.rps for r in results["bare single"]]
    ours_batch = [r.rps * BATCH for r in results["ours batch"]]
    bare_batch = [r.rps * BATCH for r in results["bare batch"]]
    single_rounds = paired_ratios(ours_single, bare_single)
    batch_rounds = paired_ratios(ours_batch, ours_single)
    single_ratio, batch_ratio = median(single_rounds), median(batch_rounds)
    data = {k: [r.__dict__ for r in v] for k, v in results.items()}
    batch_p99 = median(r.p99_ms for r in results["ours batch"])
    return [
        Row(
            NAME,
            "ingest, single signed events, requests/s (wrk -t1 -c64)",
            fmt_num(median(ours_single)),
            fmt_num(median(bare_single)) + " (bare JSON POST)",
            fmt_ratios(single_rounds),
            ">= 0.3x",
            single_ratio >= 0.3,
            data=data,
        ),
        Row(
            NAME,
            "ingest, 100-event batches, events/s (wrk -t1 -c64)",
            fmt_num(median(ours_batch)),
            fmt_num(median(ours_single)) + " (our single-event rate)",
            fmt_ratios(batch_rounds),
            ">= 3x",
            batch_ratio >= 3,
            note=(
                "The bare JSON handler parses the same 100-event bodies at "
                f"{fmt_num(median(bare_batch))} events/s "
                f"(ours/bare {fmt_ratio(median(paired_ratios(ours_batch, bare_batch)))}); "
                f"our p99 for a batch request: {fmt_num(batch_p99, 'ms')}."
            ),
        ),
    ]
