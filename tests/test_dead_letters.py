"""Dead letters through the real commands: `msgstatus dlq list`, `msgstatus dlq replay`
(only letters not replayed yet; all with --from-beginning) and `msgstatus replay --in-place`."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import uuid
from collections.abc import AsyncIterator

import orjson
import pytest

from projector.dlq import replay_letters
from projector.settings import DlqSettings
from tests.factories import acceptance, receipt
from tests.support.kafka_util import read_all, topic_size
from tests.support.stack import Stack, new_stack


@pytest.fixture(scope="module")
async def own() -> AsyncIterator[Stack]:
    """A stack of this module's own: its dead-letter topic holds only this module's letters."""
    s = new_stack()
    await s.start()
    yield s
    await s.close()


async def run_cli(stack: Stack, *args: str) -> tuple[int, str]:
    """Run ``msgstatus <args>`` against the stack's topic; returns (exit code, stdout)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "msgstatus",
        *args,
        env={
            **os.environ,
            "MSGSTATUS_KAFKA_BOOTSTRAP_SERVERS": stack.kafka,
            "MSGSTATUS_REDIS_URL": stack.redis_url,
            "MSGSTATUS_TOPIC": stack.topic,
            "MSGSTATUS_LOG_LEVEL": "WARNING",
            "MSGSTATUS_METRICS_PORT": "0",
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    assert not err.strip() or proc.returncode != 0, err.decode()
    return proc.returncode, out.decode() + err.decode()


def settings(stack: Stack) -> DlqSettings:
    """The dlq command's settings for the stack's topic."""
    return DlqSettings(kafka_bootstrap_servers=stack.kafka, topic=stack.topic, metrics_port=0)


async def letters_now(stack: Stack) -> int:
    """How many letters the dead-letter topic holds."""
    return await topic_size(stack.kafka, stack.topic + ".dlq")


async def test_dlq_replay_sends_only_letters_not_replayed_yet_unless_from_beginning(
    own: Stack,
) -> None:
    """Two READs on SMS are listed with their reason; `dlq replay` sends every letter, a
    second run none (all were replayed), --from-beginning every letter again."""
    mids = [str(uuid.uuid4()), str(uuid.uuid4())]
    events = [
        e
        for m in mids
        for e in (acceptance(m), receipt("READ", "2026-02-04T06:56:00Z", message_id=m))
    ]
    assert (await own.post(events)).status == 202

    async def both_listed() -> bool:
        return await letters_now(own) >= 2

    await own.wait_for(both_listed, 30, "the READs to be dead-lettered")
    await own.wait_caught_up()
    await own.stop_projector()  # no new letters from here on: counts are exact
    letters = await letters_now(own)
    code, out = await run_cli(own, "dlq", "list", "--limit", "1000")
    assert code == 0, out
    listed = [orjson.loads(line) for line in out.splitlines()]
    assert len(listed) == letters
    assert {d["messageId"] for d in listed} == set(mids)
    assert {d["reason"] for d in listed} == {"READ on an SMS message"}
    read_ids = {d["event"]["eventId"] for d in listed}
    assert len(read_ids) == 2

    code, out = await run_cli(own, "dlq", "replay")
    assert (code, out) == (0, f"sent {letters} dead-lettered events through the fold again\n")
    records = await read_all(own.kafka, own.topic, timeout_ms=500)
    logged = [r["eventId"] for r in records if r["status"] == "READ"]
    assert (set(logged), len(logged)) == (read_ids, 2 + letters)
    assert await replay_letters(settings(own)) == 0  # each letter is sent once
    assert await replay_letters(settings(own), from_beginning=True) == letters
    await own.start_projector()


async def test_replay_command_catches_the_served_generation_up_in_place(own: Stack) -> None:
    """`msgstatus replay --in-place` reads the whole log into the served generation and says
    how many events, which generation, and that it did not switch."""
    await own.wait_caught_up()
    records = await topic_size(own.kafka, own.topic)
    code, out = await run_cli(own, "replay", "--in-place", "--generation", own.generation)
    assert code == 0, out
    pattern = (
        rf"replayed {records} events into generation {own.generation} in [0-9.]+ s; in place\n"
    )
    assert re.fullmatch(pattern, out), out
