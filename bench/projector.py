"""Projector and replay: events/s of the fold into an EMPTY projection generation.

Produces ``2 x messages`` canonical log records (default 100,000 messages: an acceptance
with phone, reference and segments, and one DELIVERED receipt naming the message by id;
``--quick`` 20,000) to a fresh 6-partition topic, keyed as ingest keys them. Receipts trail
their acceptances by 5,000 messages in the log, so a batch rarely holds both events of one
message (as in a real log, where receipts come seconds later). Then it times

* ``projector.replay.Replay(settings, in_place=True).run()`` reading the whole topic into a
  fresh, pinned (empty) generation, in this process: records / ``ReplayResult.seconds``
  (which includes the consumer's start and the offset look-ups);
* the live ``msgstatus projector`` (a child process, fresh consumer group, another empty
  generation) reading the same topic from the start: records committed per second, from
  its first commit to its last (process start-up and group join are left out).

Both runs are checked: every message must be in the generation, sampled documents
DELIVERED. docs/design.md §7 also asks for at least 10x a Faust table projection of the same
events; see :mod:`bench.faust_app` (run when a Faust venv is given, ``--faust-python``).

Target: at least 0.3x a bare aiokafka consumer of the same topic (``getmany`` +
``orjson.loads`` per record, measured in the same run), and at least 10x Faust.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Sequence
from typing import cast

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from bench.common import (
    ROOT,
    BenchError,
    Ctx,
    Row,
    fmt_num,
    fmt_ratio,
    split_hostport,
    wait_until,
)
from bench.events import Message, document_of, make_messages, records
from bench.fold_profile import profile
from bench.redisutil import client, drop_generation
from projector.replay import Replay
from projector.settings import ProjectorSettings
from runtime.topics import ensure_topics
from schemas import layout
from schemas.events import record_key

NAME = "projector"
TRAIL = 5_000
TARGET = 50_000
FAUST_RECORDS = 60_000


def log_order(messages: Sequence[Message]) -> list[tuple[bytes, bytes]]:
    """(key, value) records: acceptances, with each message's receipt ``TRAIL`` messages later."""
    out: list[tuple[bytes, bytes]] = []
    pending: list[bytes] = []
    pending_keys: list[bytes] = []
    for index, msg in enumerate(messages):
        acc, rec = records(msg)
        out.append((record_key(acc), acc.to_json()))
        pending.append(rec.to_json())
        pending_keys.append(record_key(rec))
        if index >= TRAIL:
            out.append((pending_keys.pop(0), pending.pop(0)))
    out += list(zip(pending_keys, pending, strict=True))
    return out


async def produce(kafka: str, topic: str, items: Sequence[tuple[bytes, bytes]]) -> None:
    """Write the records (bounded: waits for each chunk's acknowledgements)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka, acks="all", linger_ms=20, max_batch_size=512 * 1024
    )
    await producer.start()
    try:
        for start in range(0, len(items), 20_000):
            futures = [
                await producer.send(topic, value, key=key)
                for key, value in items[start : start + 20_000]
            ]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def delete_topics(kafka: str, topics: Sequence[str]) -> None:
    """Delete this run's topics (best effort)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka, request_timeout_ms=10_000)
    await admin.start()
    try:
        await admin.delete_topics(list(topics))
    finally:
        await admin.close()


async def committed_total(kafka: str, group: str) -> int:
    """Sum of the group's committed offsets (0 before its first commit)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka, request_timeout_ms=10_000)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
        return sum(max(0, meta.offset) for meta in offsets.values())
    except KafkaError:  # no coordinator yet: the group has not formed
        return 0
    finally:
        await admin.close()


def check_generation(redis_url: str, generation: str, messages: Sequence[Message]) -> None:
    """Every message must be in the generation; a sample must read DELIVERED."""
    conn = client(redis_url)
    lay = layout.Layout(
        generation, int(cast(bytes, conn.hget(layout.meta_key(generation), "buckets")))
    )
    found = sum(cast(int, conn.hlen(k)) for k in lay.all_message_keys())
    if found != len(messages):
        raise BenchError(f"generation {generation}: {found} messages, wanted {len(messages)}")
    for msg in messages[:: max(1, len(messages) // 20)]:
        raw = cast(bytes | None, conn.hget(lay.message_key(msg.message_id), msg.message_id))
        if raw is None or b'"status":"DELIVERED"' not in document_of(msg.message_id, raw):
            raise BenchError(f"message {msg.message_id} is not DELIVERED in {generation}")


def run_replay(ctx: Ctx, topic: str, generation: str, workers: int = 1) -> tuple[int, float]:
    """Replay the topic into ``generation`` with ``workers`` processes; (records, seconds)."""
    settings = ProjectorSettings(
        kafka_bootstrap_servers=ctx.kafka,
        redis_url=ctx.redis_url,
        topic=topic,
        generation=generation,
        metrics_port=0,
        log_level="WARNING",
    )
    result = asyncio.run(Replay(settings, in_place=True, grace_s=0, workers=workers).run())
    return result.records, result.seconds


def checked_replay(
    ctx: Ctx, topic: str, generation: str, messages: Sequence[Message], total: int, *, workers: int
) -> tuple[int, float]:
    """Replay with ``workers`` processes, check the generation, drop it; (records, seconds)."""
    n, seconds = run_replay(ctx, topic, generation, workers)
    if n != total:
        raise BenchError(f"replay (workers={workers}) applied {n} records, wanted {total}")
    check_generation(ctx.redis_url, generation, messages)
    ctx.log(f"{NAME}: replay, {workers} worker(s): {n} records in {seconds:.1f}s")
    drop_generation(ctx.redis_url, generation)
    return n, seconds


async def bare_consume(kafka: str, topic: str, total: int, batch: int) -> float:
    """The physical limit: one aiokafka consumer of the topic doing ``getmany`` and
    ``orjson.loads`` per record, nothing else; seconds for ``total`` records, counted as
    replay counts (consumer start and offset look-ups included)."""
    started = time.monotonic()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka,
        enable_auto_commit=False,
        group_id=None,
        max_poll_records=batch,
        fetch_max_bytes=32 * 1024 * 1024,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topic)
        if not parts:
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        seen = 0
        deadline = time.monotonic() + 300
        while seen < total and time.monotonic() < deadline:
            got = await consumer.getmany(timeout_ms=1000, max_records=batch)
            for records in got.values():
                for record in records:
                    orjson.loads(record.value or b"null")
                seen += len(records)
        if seen < total:
            raise BenchError(f"the bare consumer read {seen} of {total} records")
        return time.monotonic() - started
    finally:
        await consumer.stop()


def run_live(ctx: Ctx, topic: str, generation: str, total: int) -> tuple[int, float]:
    """Run ``msgstatus projector`` over the topic from the start; (records, seconds) between
    its first and its last commit."""
    group = ctx.unique("grp")
    child = ctx.start_service(
        "projector", f"{NAME}-projector", topic=topic, group_id=group, generation=generation
    )
    samples: list[tuple[float, int]] = []
    deadline = time.monotonic() + max(120.0, total / 2_000)
    try:
        while time.monotonic() < deadline:
            ctx.procs.check_alive(child)
            done = asyncio.run(committed_total(ctx.kafka, group))
            now = time.monotonic()
            if done:
                samples.append((now, done))
            if done >= total:
                break
            time.sleep(0.05)
        else:
            raise BenchError(f"the projector did not finish {total} records in time")
    finally:
        ctx.procs.stop(child)
    (t0, first), (t1, last) = samples[0], samples[-1]
    if t1 <= t0:
        raise BenchError("the projector committed everything at once: too few records")
    return last - first, t1 - t0


def run_faust(ctx: Ctx, topic: str, expect: int) -> tuple[int, float]:
    """Fold the topic with :mod:`bench.faust_app` in the Faust venv; (records, seconds) from
    its first record to its last (start-up and rebalancing are left out)."""
    assert ctx.faust_python is not None
    app_id = ctx.unique("faust")
    out = ctx.log_dir / f"{app_id}.json"
    host, port = split_hostport(ctx.kafka.split(",")[0], 9092)
    env = {
        "BENCH_FAUST_BROKER": f"kafka://{host}:{port}",
        "BENCH_FAUST_TOPIC": topic,
        "BENCH_FAUST_APP": app_id,
        "BENCH_FAUST_EXPECT": str(expect),
        "BENCH_FAUST_OUT": str(out),
    }
    argv = [ctx.faust_python, str(ROOT / "bench" / "faust_app.py"), "worker", "-l", "warn"]
    child = ctx.procs.start(f"{NAME}-faust", argv, env, cwd=ctx.log_dir)
    try:

        def finished() -> bool:
            ctx.procs.check_alive(child)
            return out.exists()

        wait_until(finished, 150, "the Faust table projection", step=0.5)
    finally:
        ctx.procs.stop(child)
        asyncio.run(delete_topics_named(ctx.kafka, app_id))
    result = json.loads(out.read_text())
    return int(result["records"]) - 1, float(result["last"]) - float(result["first"])


async def delete_topics_named(kafka: str, prefix: str) -> None:
    """Delete the topics whose names start with ``prefix`` (Faust's changelog etc.)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka, request_timeout_ms=10_000)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()


def run(ctx: Ctx) -> list[Row]:
    """Run the benchmark; see the module docstring."""
    count = 20_000 if ctx.quick else 100_000
    topic = ctx.unique("t")
    gen_replay, gen_live = ctx.unique("r"), ctx.unique("l")
    messages = make_messages(count)
    settings = ProjectorSettings(kafka_bootstrap_servers=ctx.kafka, topic=topic)
    try:
        asyncio.run(ensure_topics(settings))
        items = log_order(messages)
        started = time.monotonic()
        asyncio.run(produce(ctx.kafka, topic, items))
        ctx.log(f"{NAME}: produced {len(items)} records in {time.monotonic() - started:.1f}s")
        batch = ProjectorSettings().batch_max_records
        bare_s = [asyncio.run(bare_consume(ctx.kafka, topic, len(items), batch))]
        replay_n, replay_s = checked_replay(ctx, topic, gen_replay, messages, len(items), workers=1)
        replay_rate = replay_n / replay_s
        replay2_n, replay2_s = checked_replay(
            ctx, topic, gen_replay, messages, len(items), workers=2
        )
        replay2_rate = replay2_n / replay2_s
        live_n, live_s = run_live(ctx, topic, gen_live, len(items))
        check_generation(ctx.redis_url, gen_live, messages)
        live_rate = live_n / live_s
        ctx.log(f"{NAME}: live projector {live_n} records in {live_s:.1f}s = {live_rate:,.0f}/s")
        bare_s.append(asyncio.run(bare_consume(ctx.kafka, topic, len(items), batch)))
        where = profile(ctx.redis_url, log_order(messages[:10_000]))
        ctx.log(f"{NAME}: {where}")
        bare_rate = len(items) / statistics.median(bare_s)
        ctx.log(f"{NAME}: bare consumer {bare_s} s for {len(items)} records = {bare_rate:,.0f}/s")
        faust: tuple[int, float] | None = None
        if ctx.faust_python:
            faust = run_faust(ctx, topic, min(len(items), FAUST_RECORDS // (3 if ctx.quick else 1)))
            ctx.log(f"{NAME}: Faust {faust[0]} records in {faust[1]:.1f}s")
    finally:
        drop_generation(ctx.redis_url, gen_replay)
        drop_generation(ctx.redis_url, gen_live)
        asyncio.run(delete_topics(ctx.kafka, [topic, settings.dead_letter_topic]))
    data = {
        "records": len(items),
        "messages": count,
        "replay": {"records": replay_n, "seconds": replay_s},
        "replay_2_workers": {"records": replay2_n, "seconds": replay2_s},
        "live": {"records": live_n, "seconds": live_s},
        "faust": None if faust is None else {"records": faust[0], "seconds": faust[1]},
        "bare": {"records": len(items), "seconds": bare_s},
    }
    if faust is None:
        faust_row = Row(
            NAME,
            "replay vs a Faust table projection of the same events",
            fmt_num(replay_rate),
            "not run",
            "-",
            ">= 10x",
            None,
            note="No Python with faust-streaming was found (--faust-python); see "
            "docs/benchmarks.md for the one-line venv set-up.",
        )
    else:
        faust_rate = faust[0] / faust[1]
        faust_row = Row(
            NAME,
            "replay vs a Faust table projection of the same events, events/s",
            fmt_num(replay_rate),
            fmt_num(faust_rate) + " (Faust)",
            fmt_ratio(replay_rate / faust_rate),
            ">= 10x",
            replay_rate / faust_rate >= 10,
            note=f"faust-streaming, one worker, in-memory table with its changelog "
            f"(bench/faust_app.py): {faust[0]:,} records in {faust[1]:.1f} s, from its first "
            "record to its last. The Faust figure is from the same run, but not interleaved "
            "with ours (one run each).",
        )
    bare_note = (
        f"bare consumer: one aiokafka consumer, getmany + orjson.loads per record, nothing "
        f"else, timed like replay (start included); run before replay and after the live "
        f"projector, median of the two: {', '.join(f'{x:.1f}' for x in bare_s)} s. Where a "
        f"replay's time goes (bench/fold_profile.py, in-process, cProfile): {where}"
    )
    return [
        Row(
            NAME,
            f"replay into an empty generation, events/s ({len(items):,} events)",
            fmt_num(replay_rate),
            fmt_num(bare_rate) + " (bare consumer)",
            fmt_ratio(replay_rate / bare_rate),
            ">= 0.3x",
            replay_rate / bare_rate >= 0.3,
            note=bare_note,
            data=data,
        ),
        Row(
            NAME,
            f"replay --workers 2 into an empty generation, events/s ({len(items):,} events)",
            fmt_num(replay2_rate),
            fmt_num(bare_rate) + " (bare consumer)",
            fmt_ratio(replay2_rate / bare_rate),
            ">= 0.3x",
            replay2_rate / bare_rate >= 0.3,
            note=f"two processes, partitions dealt between them; {replay2_rate / replay_rate:.2f}x "
            "the one-process replay of the same run (this machine has 2 cores, shared with "
            "Kafka and Redis)",
        ),
        Row(
            NAME,
            f"live `msgstatus projector` from the start, events/s ({len(items):,} events)",
            fmt_num(live_rate),
            fmt_num(bare_rate) + " (bare consumer)",
            fmt_ratio(live_rate / bare_rate),
            ">= 0.3x",
            live_rate / bare_rate >= 0.3,
        ),
        faust_row,
    ]
