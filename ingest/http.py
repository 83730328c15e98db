"""HTTP helpers every ingest handler shares: app keys, the publish-then-answer step, problems.

They live apart from :mod:`ingest.app` so that the provider routes (``ingest.providers``) can
use them while ``ingest.app`` registers those routes, without an import cycle.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import orjson
from aiohttp import web
from prometheus_client import Counter

from ingest.admission import SHED, Admission, estimate_events
from ingest.errors import BodyTimeout, LogUnavailable
from ingest.publisher import Publishable, Publisher, WireRecord
from ingest.settings import IngestSettings
from runtime.web import problem_response
from schemas.events import EventRecord
from schemas.problems import (
    BODY_TIMEOUT,
    INVALID_BODY,
    LOG_UNAVAILABLE,
    OVERLOADED,
    UNAUTHENTICATED,
    FieldError,
    Problem,
)

SETTINGS = web.AppKey("settings", IngestSettings)
PUBLISHER = web.AppKey("publisher", Publisher)
ADMISSION = web.AppKey("admission", Admission)
RESERVED = web.RequestKey("reserved_events", int)
"""The events :func:`admit` reserved for this webhook."""

WEBHOOKS = Counter(
    "msgstatus_webhooks_total",
    "Webhook calls by endpoint (events, twilio, ...) and outcome",
    ["source", "outcome"],
)
RECEIVED = Counter(
    "msgstatus_events_received_total", "Events mapped from valid webhooks", ["source"]
)


@functools.cache
def _webhooks(source: str, outcome: str) -> Any:
    """``WEBHOOKS.labels(source, outcome)``, looked up once (labels() costs per call)."""
    return WEBHOOKS.labels(source, outcome)


@functools.cache
def _shed(source: str) -> Any:
    return SHED.labels(source)


@functools.cache
def _received(source: str) -> Any:
    return RECEIVED.labels(source)


def source_of(request: web.Request) -> str:
    """The webhook endpoint's name (``events``, ``twilio``, ...): a route, never user input."""
    resource = request.match_info.route.resource
    canonical = resource.canonical if resource is not None else ""
    return canonical.rsplit("/", 1)[-1] or "unknown"


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

Responder = Callable[[Sequence[EventRecord]], web.Response]
"""Builds the 2xx answer once Kafka acknowledged the records (providers differ here)."""

R = TypeVar("R", EventRecord, WireRecord)


def accepted_response(records: Sequence[Publishable], status: int = 202) -> web.Response:
    """``status`` (202) with the ids of the events Kafka acknowledged:
    ``{"accepted": n, "eventIds": [...]}``."""
    body = orjson.dumps({"accepted": len(records), "eventIds": [r.event_id for r in records]})
    return web.Response(status=status, body=body, content_type="application/json")


async def publish_or_problem(
    request: web.Request,
    records: Sequence[R],
    respond: Callable[[Sequence[R]], web.Response] = accepted_response,
) -> web.Response:
    """Publish and answer with ``respond(records)`` only after Kafka acknowledged every record.

    Answers 503 with ``Retry-After`` (seconds, ``retry_after_s``) when Kafka is unreachable or
    too slow (docs/design.md §4): never a 2xx for events that may not be in the log. The
    reservation :func:`admit` made is set to the real number of events first.
    """
    source = source_of(request)
    _received(source).inc(len(records))
    admission = request.app[ADMISSION]
    reserved = request.get(RESERVED)
    if reserved is not None:
        admission.resize(reserved, len(records))
        request[RESERVED] = len(records)
    started = time.monotonic()
    try:
        await request.app[PUBLISHER].publish(records)
    except LogUnavailable as exc:
        took = time.monotonic() - started
        if took > admission.target_s:  # a late failure is a late answer; a fast one says nothing
            admission.observe(took)
        _webhooks(source, "unavailable").inc()
        retry = str(request.app[SETTINGS].retry_after_s)
        return problem_response(
            Problem.of(LOG_UNAVAILABLE, str(exc)), request, **{"Retry-After": retry}
        )
    admission.observe(time.monotonic() - started)
    _webhooks(source, "accepted").inc()
    return respond(records)


def overloaded(request: web.Request) -> web.Response:
    """503 + ``Retry-After`` for a webhook shed by admission control; nothing was published."""
    source = source_of(request)
    _shed(source).inc()
    _webhooks(source, "shed").inc()
    retry = str(request.app[SETTINGS].retry_after_s)
    detail = "too many events are being published; retry later"
    return problem_response(Problem.of(OVERLOADED, detail), request, **{"Retry-After": retry})


@web.middleware
async def admit(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Reserve a webhook's events before its body is read; answer 503 at once past the bound.

    Only ``/webhooks/`` routes: health, readiness and metrics must answer during overload.
    The reservation is released when the handler has answered, whatever the answer.
    """
    if not request.path.startswith("/webhooks/"):
        return await handler(request)
    admission = request.app[ADMISSION]
    limit = request.app[SETTINGS].max_batch_events
    reserved = estimate_events(request.content_length, limit)
    if not admission.enter(reserved):
        return overloaded(request)
    request[RESERVED] = reserved
    try:
        return await handler(request)
    finally:
        admission.leave(request[RESERVED])


async def read_body(request: web.Request) -> bytes:
    """The request body, read within ``body_timeout_s`` seconds.

    Raises :class:`BodyTimeout` when the client stalls (a slow or truncated upload must not
    hold a connection for ever), and ``aiohttp``'s 413 when it exceeds ``max_body_bytes``.
    """
    if request.content.is_eof():  # all of it arrived with the headers: nothing to wait for
        return await request.read()
    try:
        async with asyncio.timeout(request.app[SETTINGS].body_timeout_s):
            return await request.read()
    except TimeoutError:
        raise BodyTimeout from None


def body_timeout(request: web.Request) -> web.Response:
    """408 problem document for a body that did not arrive in time."""
    _webhooks(source_of(request), "timeout").inc()
    timeout = request.app[SETTINGS].body_timeout_s
    return problem_response(
        Problem.of(BODY_TIMEOUT, f"the body did not arrive within {timeout:g} s"), request
    )


def unauthorized(request: web.Request, detail: str) -> web.Response:
    """401 problem document; the detail never echoes secrets."""
    _webhooks(source_of(request), "unauthenticated").inc()
    return problem_response(Problem.of(UNAUTHENTICATED, detail), request)


def invalid_body(request: web.Request, detail: str, errors: Sequence[FieldError]) -> web.Response:
    """400 problem document naming each bad field."""
    _webhooks(source_of(request), "invalid").inc()
    return problem_response(Problem.of(INVALID_BODY, detail, tuple(errors)), request)
