"""GET by id: ``msgstatus api`` against the one-Redis-GET reference (docs/design.md §7).

Measures requests/s and p99 latency of ``GET /api/messagestatus/{messageid}`` on the real
read API (one process, WARNING log level, so no access-log lines are written) and of
``GET /doc/{id}`` on :mod:`bench.reference_servers` ``redis-get`` (one process, one Redis GET
of the same pre-serialised document). The message is written into a fresh projection
generation by the projector's own code (``ProjectionStore.apply``: acceptance, then
DELIVERED); the reference key holds the byte-identical document the API answers.

Load: ``wrk -t1 -c64 --latency``, the two servers alternating (ABBA) for ``rounds`` rounds;
the load generator shares the machine's cores with the server, Redis and Kafka.

Target: at least 0.9x the reference's requests/s; p99 at most 1.2x the reference's p99.
"""

from __future__ import annotations

import uuid

from bench import wrk
from bench.common import (
    BenchError,
    Child,
    Ctx,
    Row,
    fmt_num,
    fmt_ratios,
    interleaved,
    median,
    ratios,
)
from bench.events import document_of, make_messages
from bench.redisutil import client, drop_generation, drop_keys, load, stored

NAME = "read_by_id"
CONNECTIONS = 64


class ReadServers:
    """The read API on a fresh generation and the one-GET reference beside it."""

    def __init__(self, ctx: Ctx, name: str) -> None:
        self.ctx = ctx
        self.name = name
        self.generation = ctx.unique("g")
        self.ref_prefix = f"msgstatus:{ctx.unique('ref')}:"
        self.api_key = f"bench-{uuid.uuid4().hex}"
        self.children: list[Child] = []
        self.api_url = ""
        self.ref_url = ""

    def start(self) -> None:
        """Start both servers (the data must be loaded first)."""
        ctx = self.ctx
        child, self.api_url = ctx.start_http_service(
            "api",
            f"{self.name}-api",
            "api_port",
            "/readyz",
            api_keys=self.api_key,
            generation=self.generation,
        )
        self.children.append(child)
        child, self.ref_url = ctx.start_reference(
            "redis-get", f"{self.name}-reference", "--redis", ctx.redis_url,
            "--key-prefix", self.ref_prefix,
        )  # fmt: skip
        self.children.append(child)

    def set_reference_document(self, doc_id: str, document: bytes) -> None:
        """Store the pre-serialised document the reference serves at ``/doc/{doc_id}``."""
        client(self.ctx.redis_url).set(self.ref_prefix + doc_id, document)

    @property
    def headers(self) -> list[str]:
        """wrk ``-H`` arguments for the read API (sent to the reference too, for parity)."""
        return [f"X-Api-Key: {self.api_key}"]

    def stop(self) -> None:
        """Stop the servers and delete this benchmark's keys."""
        for child in self.children:
            self.ctx.procs.stop(child)
        self.children.clear()
        drop_generation(self.ctx.redis_url, self.generation)
        drop_keys(self.ctx.redis_url, self.ref_prefix + "*")


def check_same(ours: bytes, reference: bytes, what: str) -> None:
    """Both servers must answer with the same document, or the comparison means nothing."""
    if ours != reference:
        raise BenchError(f"{what}: the read API and the reference answer differently")


def run(ctx: Ctx) -> list[Row]:
    """Run the benchmark; see the module docstring."""
    from bench.common import http_get  # noqa: PLC0415

    servers = ReadServers(ctx, NAME)
    try:
        msg = make_messages(1)[0]
        load(ctx.redis_url, servers.generation, [msg])
        document = document_of(
            msg.message_id, stored(ctx.redis_url, servers.generation, msg.message_id)
        )
        servers.set_reference_document(msg.message_id, document)
        servers.start()
        ours_url = f"{servers.api_url}/api/messagestatus/{msg.message_id}"
        ref_url = f"{servers.ref_url}/doc/{msg.message_id}"
        headers = {"X-Api-Key": servers.api_key}
        check_same(http_get(ours_url, headers), http_get(ref_url, headers), "GET by id")
        ctx.log(f"{NAME}: document of {len(document)} bytes; warming up")
        for url in (ours_url, ref_url):
            wrk.run(url, 1, connections=CONNECTIONS, headers=servers.headers)
        results = interleaved(
            ctx.rounds,
            {
                "ours": lambda: wrk.run(
                    ours_url, ctx.duration_s, connections=CONNECTIONS, headers=servers.headers
                ),
                "reference": lambda: wrk.run(
                    ref_url, ctx.duration_s, connections=CONNECTIONS, headers=servers.headers
                ),
            },
            ctx.log,
        )
    finally:
        servers.stop()
    ours, ref = results["ours"], results["reference"]
    rps_rounds = ratios([r.rps for r in ours], [r.rps for r in ref])
    p99_rounds = ratios([r.p99_ms for r in ours], [r.p99_ms for r in ref])
    rps_ratio, p99_ratio = median(rps_rounds), median(p99_rounds)
    data = {
        "ours": [r.__dict__ for r in ours],
        "reference": [r.__dict__ for r in ref],
        "connections": CONNECTIONS,
        "duration_s": ctx.duration_s,
        "document_bytes": len(document),
    }
    return [
        Row(
            NAME,
            "GET by id, requests/s (wrk -t1 -c64)",
            fmt_num(median(r.rps for r in ours)),
            fmt_num(median(r.rps for r in ref)),
            fmt_ratios(rps_rounds),
            ">= 0.9x",
            rps_ratio >= 0.9,
            data=data,
        ),
        Row(
            NAME,
            "GET by id, p99 latency at 64 connections",
            fmt_num(median(r.p99_ms for r in ours), "ms"),
            fmt_num(median(r.p99_ms for r in ref), "ms"),
            fmt_ratios(p99_rounds),
            "<= 1.2x",
            p99_ratio <= 1.2,
        ),
    ]
