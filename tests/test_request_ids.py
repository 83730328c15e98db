"""Request ids: every HTTP answer carries X-Request-Id (the caller's, or one made for it),
and the process's JSON access log line of that request carries the same id."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
import time
import uuid

import aiohttp
import orjson

from tests.support.ports import free_port
from tests.support.stack import REDIS_URL


async def test_request_ids_are_answered_and_logged() -> None:
    """A caller's X-Request-Id comes back and is in the access log line; without one, the id
    made for the request is both answered and logged; log lines are JSON with the documented
    keys."""
    port = free_port()
    with tempfile.TemporaryFile() as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "msgstatus",
            "api",
            env={
                **os.environ,
                "MSGSTATUS_REDIS_URL": REDIS_URL,
                "MSGSTATUS_API_PORT": str(port),
                "MSGSTATUS_API_KEYS": "k",
                "MSGSTATUS_LOG_FORMAT": "json",
                "MSGSTATUS_LOG_LEVEL": "INFO",
            },
            stdout=asyncio.subprocess.DEVNULL,
            stderr=log,
        )
        base = f"http://127.0.0.1:{port}"
        mine = f"caller-{uuid.uuid4().hex[:8]}"
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 30
            while True:
                try:
                    async with http.get(base + "/healthz") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                assert time.monotonic() < deadline, "api did not start"
                await asyncio.sleep(0.1)
            path = f"/api/messagestatus/{uuid.uuid4()}"
            headers = {"X-Api-Key": "k", "X-Request-Id": mine}
            async with http.get(base + path, headers=headers) as resp:
                assert (resp.status, resp.headers["X-Request-Id"]) == (404, mine)
            async with http.get(base + path + "/history", headers={"X-Api-Key": "k"}) as resp:
                made = resp.headers["X-Request-Id"]
                assert made
                assert made != mine
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
        log.seek(0)
        lines = [orjson.loads(line) for line in log.read().splitlines() if line.strip()]
    assert lines
    assert all({"time", "level", "logger", "message", "request_id"} <= set(x) for x in lines)
    access = {x["request_id"]: x["message"] for x in lines if x["logger"] == "aiohttp.access"}
    assert path in access[mine]
    assert path + "/history" in access[made]
