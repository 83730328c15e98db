"""One delivery attempt over HTTP: signed POST, no redirects, the response body never read.

The client's connector resolves through :class:`notifier.guard.GuardedResolver`, and IP
literals are checked before the request, so only public addresses are dialled (docs/push.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import aiohttp

from notifier.guard import GuardedResolver, RefusedAddress, check_url
from notifier.schedule import parse_retry_after
from notifier.signing import signature_headers
from schemas.deliveries import Delivery

log = logging.getLogger(__name__)

USER_AGENT = "msgstatus-notifier/1"
SEQUENCE_HEADER = "msgstatus-sequence"
"""The change's order hint (schemas.changes.sequence_of): a receiver keeps the highest."""


@dataclass(frozen=True, slots=True)
class Result:
    """What one attempt got: HTTP status (None without an answer), duration in ms, the error's
    class name, ``Retry-After`` in seconds, and whether the SSRF guard refused the address."""

    http_status: int | None
    latency_ms: float
    error: str | None = None
    retry_after_s: float | None = None
    refused: bool = False

    @property
    def ok(self) -> bool:
        """2xx: delivered."""
        return self.http_status is not None and 200 <= self.http_status < 300


class Sender:
    """An HTTP client for deliveries; :meth:`start` before use and :meth:`close` after."""

    def __init__(
        self, allow_hosts: Collection[str], timeout_s: float, max_connections: int
    ) -> None:
        self.allow_hosts = frozenset(h.lower() for h in allow_hosts)
        self.timeout_s = timeout_s
        self.max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Open the client session (guarded resolver, no cookies, no proxies from the env)."""
        connector = aiohttp.TCPConnector(
            resolver=GuardedResolver(self.allow_hosts),
            limit=self.max_connections,
            ttl_dns_cache=10,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self.timeout_s),
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
            auto_decompress=False,
        )

    async def close(self) -> None:
        """Close the session and its connections."""
        if self._session is not None:
            await self._session.close()

    async def attempt(self, delivery: Delivery, secrets: Sequence[str]) -> Result:
        """POST the delivery's body, signed; never raises for network or HTTP failures."""
        assert self._session is not None, "Sender.start() first"
        try:
            check_url(delivery.url, self.allow_hosts)
        except RefusedAddress as exc:
            log.warning("refused delivery %s: %s", delivery.webhook_id, exc)
            return Result(None, 0.0, "RefusedAddress", refused=True)
        headers = {
            **delivery.headers,
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            SEQUENCE_HEADER: str(delivery.sequence),
            **signature_headers(secrets, delivery.webhook_id, delivery.body),
        }
        started = time.perf_counter()
        try:
            async with self._session.post(
                delivery.url, data=delivery.body.encode(), headers=headers, allow_redirects=False
            ) as resp:
                elapsed = (time.perf_counter() - started) * 1000
                after = parse_retry_after(resp.headers.get("Retry-After"), time.time())
                return Result(resp.status, elapsed, retry_after_s=after)
        except aiohttp.ClientConnectorDNSError as exc:
            elapsed = (time.perf_counter() - started) * 1000
            if isinstance(exc.os_error, RefusedAddress):
                log.warning("refused delivery %s: %s", delivery.webhook_id, exc.os_error)
                return Result(None, elapsed, "RefusedAddress", refused=True)
            return Result(None, elapsed, type(exc).__name__)
        except TimeoutError:
            return Result(None, (time.perf_counter() - started) * 1000, "Timeout")
        except (aiohttp.ClientError, OSError, asyncio.IncompleteReadError) as exc:
            # A URL the client cannot dial now never becomes dialable: no retries for ~3 days.
            invalid = isinstance(exc, aiohttp.InvalidUrlClientError)
            if invalid:
                log.warning("refused delivery %s: %s", delivery.webhook_id, exc)
            elapsed = (time.perf_counter() - started) * 1000
            return Result(None, elapsed, type(exc).__name__, refused=invalid)
