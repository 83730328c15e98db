"""Redis memory per message with two events (acceptance with a reference and a phone, then
DELIVERED), written by the projector's own code (``ProjectionStore.apply``).

The generation is given one bucket per ``FILL`` messages, as a deployment sized for its
volume would be (``MSGSTATUS_PROJECTION_BUCKETS``, docs/operations.md).

Loads ``messages`` messages (20,000; ``--quick`` 5,000) into a fresh generation of an EMPTY
Redis database and reports ``INFO memory`` ``used_memory`` after minus before, divided by
the number of messages: everything the projection costs, including Redis's key tables and
expiry entries. Then ``MEMORY USAGE`` (all samples) of the keys one message owns or shares:
summed per kind of key (message buckets, provider buckets, phone and reference indexes) and
divided by the messages. Two cases:

* unique: every message has its own phone number and reference key (each index holds one
  entry: the most a message can cost);
* shared: 50 messages per phone number and per reference key.

The database is empty before (the first empty one from the ``--redis`` URL's database
upward is used) and this run's keys are deleted afterwards. Target: at most 600 bytes per
message (the unique case is judged).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import cast
from urllib.parse import urlsplit, urlunsplit

import redis

from bench.common import BenchError, Ctx, Row, fmt_num
from bench.events import load_projection, make_messages
from bench.redisutil import drop_generation
from schemas.layout import Layout

NAME = "memory"
TARGET = 600
SHARED = 50
FILL = 20


def empty_database(url: str) -> str:
    """The URL of the first empty database from ``url``'s own upward."""
    parts = urlsplit(url)
    first = int(parts.path.lstrip("/") or 0)
    for db in range(first, 16):
        candidate = urlunsplit(parts._replace(path=f"/{db}"))
        if redis.Redis.from_url(candidate).dbsize() == 0:
            return candidate
    raise BenchError("no empty Redis database to measure in")


def used_memory(conn: redis.Redis) -> int:
    """``used_memory`` after a short settle."""
    time.sleep(0.3)
    return int(cast(dict[str, int], conn.info("memory"))["used_memory"])


def usage(conn: redis.Redis, key: str) -> int:
    """``MEMORY USAGE key SAMPLES 0`` (every element counted)."""
    return int(cast(int, conn.memory_usage(key, samples=0)) or 0)


def by_kind(conn: redis.Redis, generation: str) -> dict[str, tuple[int, int]]:
    """Kind of key (``m`` message buckets, ``pm`` provider buckets, ``p``/``r`` indexes, ...)
    -> (keys, ``MEMORY USAGE`` summed over them)."""
    out: dict[str, list[int]] = {}
    for key in conn.scan_iter(match=f"msgstatus:{generation}:*", count=2000):
        parts = key.decode().split(":")
        kind = parts[3] if len(parts) > 4 else parts[2]
        entry = out.setdefault(kind, [0, 0])
        entry[0] += 1
        entry[1] += usage(conn, key.decode())
    return {k: (v[0], v[1]) for k, v in out.items()}


def measure(ctx: Ctx, url: str, count: int, shared: bool) -> dict[str, float]:
    """Load one case and measure it; the generation is deleted afterwards."""
    conn = redis.Redis.from_url(url, decode_responses=False)
    generation = ctx.unique("m")
    group = SHARED if shared else None
    messages = make_messages(
        count,
        phones=None if group is None else count // group,
        references=None if group is None else count // group,
    )
    buckets = max(1, count // FILL)
    try:
        before = used_memory(conn)
        asyncio.run(load_projection(url, generation, messages, buckets=buckets))
        after = used_memory(conn)
        kinds = by_kind(conn, generation)
        lay = Layout(generation, buckets)
        encodings = Counter(
            cast(bytes, conn.object("encoding", k)).decode()
            for k in lay.all_message_keys()
            if conn.exists(k)
        )
    finally:
        drop_generation(url, generation)
    result: dict[str, float] = {"delta_per_message": (after - before) / count}
    for kind, (n, used) in kinds.items():
        result[f"keys_{kind}"] = float(n)
        result[f"bytes_{kind}"] = used / count
    result["buckets"] = float(buckets)
    result["message_bucket_encodings"] = float(len(encodings))
    result["listpack_buckets"] = float(encodings.get("listpack", 0))
    return result


def run(ctx: Ctx) -> list[Row]:
    """Run the benchmark; see the module docstring."""
    count = 5_000 if ctx.quick else 20_000
    url = empty_database(ctx.redis_url)
    ctx.log(f"{NAME}: {count} messages into {url}")
    unique = measure(ctx, url, count, shared=False)
    ctx.log(f"{NAME}: unique phones/references: {unique}")
    shared = measure(ctx, url, count, shared=True)
    ctx.log(f"{NAME}: {SHARED} messages per phone/reference: {shared}")

    def breakdown(r: dict[str, float]) -> str:
        names = {"m": "message buckets", "pm": "provider buckets", "p": "phone indexes",
                 "r": "reference indexes"}  # fmt: skip
        shares = ", ".join(
            f"{names.get(k[6:], k[6:])} {v:.0f} B" for k, v in r.items() if k.startswith("bytes_")
        )
        return (
            f"{shares} per message; {r['buckets']:.0f} buckets "
            f"({r['listpack_buckets']:.0f} of them listpack-encoded)"
        )

    return [
        Row(
            NAME,
            f"Redis bytes/message, 2 events, own phone and reference ({count:,} messages)",
            fmt_num(unique["delta_per_message"], "B"),
            "-",
            "-",
            f"<= {TARGET} B",
            unique["delta_per_message"] <= TARGET,
            note="used_memory delta / messages. MEMORY USAGE: " + breakdown(unique) + ".",
            data=unique,
        ),
        Row(
            NAME,
            f"Redis bytes/message, 2 events, {SHARED} messages per phone and per reference",
            fmt_num(shared["delta_per_message"], "B"),
            "-",
            "-",
            f"<= {TARGET} B",
            shared["delta_per_message"] <= TARGET,
            note="used_memory delta / messages. MEMORY USAGE: " + breakdown(shared) + ".",
            data=shared,
        ),
    ]
