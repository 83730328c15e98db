"""Clients that abort mid-flight never make another client receive the wrong body."""

from __future__ import annotations

import asyncio
import random
import uuid

import aiohttp

from tests.factories import acceptance
from tests.support.stack import Stack


async def test_aborted_requests_never_swap_bodies_between_clients(stack: Stack) -> None:
    """docs/pitfalls.md redis-py#2624: under aborts, every answered read is the message asked for."""
    ids = [str(uuid.uuid4()) for _ in range(30)]
    assert (await stack.post([acceptance(i) for i in ids])).status == 202
    for mid in ids:
        await stack.wait_for_status(mid, "PROVIDER_ACCEPTANCE")
    rnd = random.Random(7)
    answered, aborted, wrong = 0, 0, []

    async def one(session: aiohttp.ClientSession, mid: str) -> None:
        nonlocal answered, aborted
        timeout = aiohttp.ClientTimeout(total=rnd.choice([0.0005, 0.001, 0.002, 5.0]))
        try:
            async with session.get(
                f"{stack.api_url}/api/messagestatus/{mid}",
                headers={"X-Api-Key": stack.api_key},
                timeout=timeout,
            ) as resp:
                body = await resp.json()
        except (TimeoutError, aiohttp.ClientError):
            aborted += 1
            return
        answered += 1
        if body["message"]["id"] != mid:
            wrong.append((mid, body["message"]["id"]))

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:
        for _ in range(6):
            await asyncio.gather(*(one(session, rnd.choice(ids)) for _ in range(300)))
    assert wrong == []
    assert answered > 300
    assert aborted > 0
