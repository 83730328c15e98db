"""Dead letters through the real commands: `msgstatus dlq list` and `msgstatus dlq replay`."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid

import orjson

from tests.factories import acceptance, receipt
from tests.support.kafka_util import read_all
from tests.support.stack import Stack


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
    return proc.returncode, out.decode() + err.decode()


async def test_dlq_list_shows_reasons_and_replay_sends_the_events_again(stack: Stack) -> None:
    """A READ on SMS is listed with its reason; `dlq replay` publishes its event to the log."""
    mid = str(uuid.uuid4())
    await stack.post([acceptance(mid), receipt("READ", "2026-02-04T06:56:00Z", message_id=mid)])

    async def listed() -> bool:
        code, out = await run_cli(stack, "dlq", "list", "--limit", "1000")
        assert code == 0, out
        letters = [orjson.loads(line) for line in out.splitlines() if line.startswith("{")]
        return any(
            d.get("messageId") == mid and d["reason"] == "READ on an SMS message" for d in letters
        )

    await stack.wait_for(listed, 30, "the READ letter to be listed")
    before = sum(1 for v in await read_all(stack.kafka, stack.topic) if v.get("messageId") == mid)
    code, out = await run_cli(stack, "dlq", "replay")
    assert code == 0, out
    assert "sent 0 " not in out
    after = sum(1 for v in await read_all(stack.kafka, stack.topic) if v.get("messageId") == mid)
    assert after == before + 1


async def test_replay_command_catches_the_served_generation_up_in_place(stack: Stack) -> None:
    """`msgstatus replay --in-place` runs to the end of the log and reports what it did."""
    code, out = await run_cli(stack, "replay", "--in-place", "--generation", stack.generation)
    assert code == 0, out
    assert "in place" in out
    assert "replayed" in out
