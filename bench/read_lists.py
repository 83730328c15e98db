"""GET by phone / by reference, count=50: ``msgstatus api`` against the one-GET reference.

Measures requests/s of ``GET /api/messagestatus/phonenumber/{phone}?count=50`` and
``GET /api/messagestatus/reference/{key}?count=50`` on the real read API (one process,
WARNING log level), where the phone number and the reference key each index 60 messages
(so a page is full and a ``Link`` to the next page is made), against
:mod:`bench.reference_servers` ``redis-get`` serving one pre-serialised document with one
Redis GET (the same reference as ``read_by_id``). The 60 messages are written by the
projector's own code (``ProjectionStore.apply``: acceptance, then DELIVERED).

Load: ``wrk -t1 -c64``, the three alternating (the order reversed every round) for
``rounds`` rounds; the load generator shares the cores with the server and Redis.

Target: each list path at least 0.5x the reference's requests/s.
"""

from __future__ import annotations

from urllib.parse import quote

import orjson

from bench import wrk
from bench.common import BenchError, Ctx, Row, fmt_num, fmt_ratios, http_get, interleaved, median
from bench.common import ratios as paired_ratios
from bench.events import document_of, make_messages
from bench.read_by_id import ReadServers
from bench.redisutil import load, stored

NAME = "read_lists"
CONNECTIONS = 64
MESSAGES = 60
COUNT = 50


def run(ctx: Ctx) -> list[Row]:
    """Run the benchmark; see the module docstring."""
    servers = ReadServers(ctx, NAME)
    try:
        msgs = make_messages(MESSAGES, phones=1, references=1)
        load(ctx.redis_url, servers.generation, msgs)
        first = msgs[0]
        document = document_of(
            first.message_id, stored(ctx.redis_url, servers.generation, first.message_id)
        )
        servers.set_reference_document(first.message_id, document)
        servers.start()
        base = f"{servers.api_url}/api/messagestatus"
        urls = {
            "by phone": f"{base}/phonenumber/{quote(first.phone, safe='')}?count={COUNT}",
            "by reference": f"{base}/reference/{quote(first.reference_key, safe='')}?count={COUNT}",
            "reference": f"{servers.ref_url}/doc/{first.message_id}",
        }
        headers = {"X-Api-Key": servers.api_key}
        for name in ("by phone", "by reference"):
            page = orjson.loads(http_get(urls[name], headers))
            if len(page["messages"]) != COUNT:
                raise BenchError(f"{name}: {len(page['messages'])} messages, wanted {COUNT}")
        ctx.log(f"{NAME}: pages of {COUNT} messages from an index of {MESSAGES}; warming up")
        for url in urls.values():
            wrk.run(url, 1, connections=CONNECTIONS, headers=servers.headers)
        results = interleaved(
            ctx.rounds,
            {
                name: (
                    lambda url=url: wrk.run(  # type: ignore[misc]
                        url, ctx.duration_s, connections=CONNECTIONS, headers=servers.headers
                    )
                )
                for name, url in urls.items()
            },
            ctx.log,
        )
    finally:
        servers.stop()
    ref = results["reference"]
    rows = []
    for name in ("by phone", "by reference"):
        ours = results[name]
        per_round = paired_ratios([r.rps for r in ours], [r.rps for r in ref])
        ratio = median(per_round)
        rows.append(
            Row(
                NAME,
                f"GET {name}, count={COUNT}, requests/s (wrk -t1 -c64)",
                fmt_num(median(r.rps for r in ours)),
                fmt_num(median(r.rps for r in ref)),
                fmt_ratios(per_round),
                ">= 0.5x",
                ratio >= 0.5,
                data={
                    "ours": [r.__dict__ for r in ours],
                    "reference": [r.__dict__ for r in ref],
                    "p99_ms_ours": median(r.p99_ms for r in ours),
                },
            )
        )
    return rows
