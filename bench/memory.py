"""Redis memory per message with two events (acceptance with a reference and a phone, then
DELIVERED), written by the projector's own code (``ProjectionStore.apply``).

Loads ``messages`` messages (20,000; ``--quick`` 5,000) into a fresh generation of an EMPTY
Redis database and reports ``INFO memory`` ``used_memory`` after minus before, divided by
the number of messages: everything the projection costs, including Redis's key tables and
expiry entries. Then ``MEMORY USAGE`` (all samples) of the keys one message owns or shares:
its message key, its share of its phone index and reference index entries, its provider map
key (``msgstatus:<g>:prov:{name|id}`` -> message id). Two cases:

* unique: every message has its own phone number and reference key (each index holds one
  entry: the most a message can cost);
* shared: 50 messages per phone number and per reference key.

The database is empty before (the first empty one from the ``--redis`` URL's database
upward is used) and this run's keys are deleted afterwards. Target: at most 600 bytes per
message (the unique case is judged).
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from typing import cast
from urllib.parse import urlsplit, urlunsplit

import redis

from bench.common import BenchError, Ctx, Row, fmt_num
from bench.events import make_messages
from bench.redisutil import drop_generation, load
from schemas import keys

NAME = "memory"
TARGET = 600
SHARED = 50


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
    try:
        before = used_memory(conn)
        load(url, generation, messages)
        after = used_memory(conn)
        kinds = Counter(
            key.decode().split(":")[2]
            for key in conn.scan_iter(match=f"msgstatus:{generation}:*", count=2000)
        )
        sample = messages[:: max(1, count // 200)]
        msg = [usage(conn, keys.message_key(generation, m.message_id)) for m in sample]
        value = [int(conn.strlen(keys.message_key(generation, m.message_id))) for m in sample]
        prov = [
            usage(conn, keys.provider_map_key(generation, "PROVIDER1", m.provider_id))
            for m in sample
        ]
        per_index = 1 if group is None else group
        phone = [usage(conn, keys.phone_index_key(generation, m.phone)) / per_index for m in sample]
        ref = [
            usage(conn, keys.reference_index_key(generation, m.reference_key)) / per_index
            for m in sample
        ]
    finally:
        drop_generation(url, generation)
    result = {
        "delta_per_message": (after - before) / count,
        "message_key": statistics.mean(msg),
        "message_value_bytes": statistics.mean(value),
        "phone_entry": statistics.mean(phone),
        "reference_entry": statistics.mean(ref),
        "provider_map_key": statistics.mean(prov),
    }
    result["memory_usage_sum"] = sum(
        result[k] for k in ("message_key", "phone_entry", "reference_entry", "provider_map_key")
    )
    result.update({f"keys_{k}": float(v) for k, v in kinds.items()})
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
        return (
            f"message key {r['message_key']:.0f} B (value {r['message_value_bytes']:.0f} B), "
            f"phone index entry {r['phone_entry']:.0f} B, reference index entry "
            f"{r['reference_entry']:.0f} B, provider map key {r['provider_map_key']:.0f} B; "
            f"sum {r['memory_usage_sum']:.0f} B"
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
