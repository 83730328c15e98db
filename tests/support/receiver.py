"""A real local webhook receiver (aiohttp on 127.0.0.1) with the modes the push tests need.

Paths: ``/ok/<name>`` 200; ``/flaky/<n>/<name>`` 503 for the first n requests of each
``webhook-id``, then 200; ``/gone/<name>`` 410; ``/redirect/<name>`` 302 to the cloud metadata
address; ``/slow/<name>`` answers after ``slow_s`` seconds; ``/slowfirst/<name>`` delays only
the first request of each message. Every request is recorded with its headers and body.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web


@dataclass
class Received:
    """One request as the receiver saw it, and what it answered."""

    path: str
    headers: dict[str, str]
    raw: bytes
    status: int

    @property
    def body(self) -> Any:
        """The parsed JSON body."""
        return orjson.loads(self.raw)

    @property
    def message_id(self) -> str:
        """The ``message.id`` of the body."""
        return str(self.body["message"]["id"])


@dataclass
class Receiver:
    """The server and what it received; ``url(path)`` gives an address on it."""

    slow_s: float = 2.0
    received: list[Received] = field(default_factory=list)
    done: list[Received] = field(default_factory=list)
    """Requests in the order their answers were completed (after any delay)."""
    base: str = ""
    _seen: dict[str, int] = field(default_factory=dict)
    _runner: web.AppRunner | None = None

    def url(self, path: str) -> str:
        """An absolute URL of this receiver."""
        return self.base + path

    def for_message(self, message_id: str, ok_only: bool = False) -> list[Received]:
        """Requests about one message, in arrival order (only 2xx-answered with ``ok_only``)."""
        return [
            r
            for r in self.received
            if r.message_id == message_id and (not ok_only or 200 <= r.status < 300)
        ]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        parts = request.path.strip("/").split("/")
        mode = parts[0]
        wid = request.headers.get("webhook-id", "")
        count = self._seen[wid] = self._seen.get(wid, 0) + 1
        status = 200
        headers: dict[str, str] = {}
        if mode == "flaky" and count <= int(parts[1]):
            status = 503
            headers["Retry-After"] = "0"
        elif mode == "gone":
            status = 410
        elif mode == "redirect":
            status = 302
            headers["Location"] = "http://169.254.169.254/latest/meta-data/"
        entry = Received(request.path, dict(request.headers), raw, status)
        self.received.append(entry)
        first_of_message = sum(1 for r in self.received if r.raw and _mid(r.raw) == _mid(raw)) == 1
        if mode == "slow" or (mode == "slowfirst" and first_of_message):
            await asyncio.sleep(self.slow_s)
        self.done.append(entry)
        return web.Response(status=status, headers=headers, text="receiver body, never stored")

    async def start(self) -> Receiver:
        """Listen on a free port of 127.0.0.1."""
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.base_events.Server)
        self.base = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        return self

    async def close(self) -> None:
        """Stop listening (slow handlers are cut short)."""
        if self._runner is not None:
            await self._runner.cleanup()


def _mid(raw: bytes) -> str:
    return str(orjson.loads(raw)["message"]["id"])
