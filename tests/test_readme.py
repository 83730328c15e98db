"""The README walkthrough, run as written: its post-webhook.sh call with seed-events.json,
then its curl reads, against a stack of its own. Only the read API's address is changed
(the script takes the ingest port from MSGSTATUS_INGEST_PORT, as `make run` sets it)."""

from __future__ import annotations

import asyncio
import os
import pathlib
import re
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from tests.factories import SEED_ID
from tests.support.stack import Stack, new_stack

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
WALKTHROUGH = README[README.index("## Walkthrough") : README.index("## The read API")]


@pytest.fixture(scope="module")
async def own() -> AsyncIterator[Stack]:
    """A stack of the walkthrough's own (the seed message is posted into a fresh generation)."""
    s = new_stack()
    await s.start()
    yield s
    await s.close()


def commands() -> list[str]:
    """The walkthrough's commands: the sh block's lines that run something."""
    block = re.search(r"```sh\n(.*?)```", WALKTHROUGH, re.S)
    assert block is not None
    lines = [line.strip() for line in block.group(1).splitlines()]
    return [line for line in lines if line.startswith(("docs/examples/", "curl "))]


async def run(command: str, env: dict[str, str]) -> bytes:
    """Run one line with bash in the repository root; its standard output."""
    proc = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        command,
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, (command, err)
    return out


async def test_the_readme_walkthrough_runs_as_written(own: Stack) -> None:
    """The post is accepted (2 events); the first read is the README's document exactly, the
    phone and reference reads list it, the history has both events oldest first."""
    post, *reads = commands()
    assert post == "docs/examples/post-webhook.sh docs/examples/seed-events.json"
    assert len(reads) == 4
    env = {
        "MSGSTATUS_WEBHOOK_SECRET": own.secret,
        "KEY": own.api_key,
        "MSGSTATUS_INGEST_PORT": own.ingest_url.rsplit(":", 1)[1],
    }
    posted = orjson.loads(await run(post, env))
    assert posted["accepted"] == 2
    assert len(posted["eventIds"]) == 2
    await own.wait_for_status(SEED_ID, "DELIVERED")
    await own.wait_for_list(
        "/api/messagestatus/reference/EXT_KEY?count=2&sendDate=2026-12-31T23:59:59Z", 1
    )
    await own.wait_for_history(SEED_ID, 2)

    answers: list[Any] = []
    for line in reads:
        assert "http://127.0.0.1:8080/" in line
        answers.append(
            orjson.loads(await run(line.replace("http://127.0.0.1:8080", own.api_url), env))
        )
    documented = re.search(r"```json\n(.*?)```", WALKTHROUGH, re.S)
    assert documented is not None
    document = orjson.loads(documented.group(1))
    by_id, by_phone, by_reference, history = answers
    assert by_id == document
    assert by_phone == {"messages": [document]}
    assert by_reference == {"messages": [document]}
    assert [e["status"] for e in history["events"]] == ["PROVIDER_ACCEPTANCE", "DELIVERED"]
