"""The ingest HTTP service: webhook endpoints that publish canonical events to Kafka."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import orjson
from aiohttp import web

from ingest.canonical import parse_body
from ingest.errors import InvalidBody, LogUnavailable, Unauthenticated
from ingest.publisher import Publisher
from ingest.settings import IngestSettings
from ingest.signing import StandardWebhookVerifier
from msgstatus.web import add_ops_routes, problem_response
from schemas.events import EventRecord
from schemas.problems import Problem

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", IngestSettings)
PUBLISHER = web.AppKey("publisher", Publisher)
VERIFIER: web.AppKey[StandardWebhookVerifier | None] = web.AppKey("verifier")


def accepted_response(records: list[EventRecord]) -> web.Response:
    """202 with the ids of the events Kafka acknowledged: ``{"accepted": n, "eventIds": [...]}``."""
    body = orjson.dumps({"accepted": len(records), "eventIds": [r.event_id for r in records]})
    return web.Response(status=202, body=body, content_type="application/json")


async def publish_or_problem(request: web.Request, records: list[EventRecord]) -> web.Response:
    """Publish and answer 202 only after Kafka acknowledged; 503 with Retry-After otherwise."""
    try:
        await request.app[PUBLISHER].publish(records)
    except LogUnavailable as exc:
        retry = str(request.app[SETTINGS].retry_after_s)
        return problem_response(
            Problem(503, "log-unavailable", str(exc)), request, **{"Retry-After": retry}
        )
    return accepted_response(records)


def unauthorized(request: web.Request, detail: str) -> web.Response:
    """401 problem document; the detail never echoes secrets."""
    return problem_response(Problem(401, "unauthenticated", detail), request)


async def canonical_webhook(request: web.Request) -> web.Response:
    """``POST /webhooks/events``: one canonical event or an array (SPEC section 4)."""
    body = await request.read()
    verifier = request.app[VERIFIER]
    settings = request.app[SETTINGS]
    if verifier is None:
        if "events" not in settings.allow_unsigned_providers:
            return unauthorized(
                request, "no webhook secret is configured (MSGSTATUS_WEBHOOK_SECRET)"
            )
    else:
        try:
            verifier.verify(body, request.headers)
        except Unauthenticated as exc:
            return unauthorized(request, str(exc))
    try:
        records = parse_body(body, settings.max_batch_events)
    except InvalidBody as exc:
        problem = Problem(
            400, "invalid-body", "the body is not a valid event batch", tuple(exc.errors)
        )
        return problem_response(problem, request)
    return await publish_or_problem(request, records)


async def _publisher_ctx(app: web.Application) -> AsyncIterator[None]:
    publisher = Publisher(app[SETTINGS])
    app[PUBLISHER] = publisher
    await publisher.start()
    yield
    await publisher.stop()


def create_app(settings: IngestSettings) -> web.Application:
    """Build the ingest application; the Kafka producer opens and closes with the app.

    Bodies over ``max_body_bytes`` get 413 before they are parsed.
    """
    app = web.Application(client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
    app[VERIFIER] = StandardWebhookVerifier(secret) if secret else None
    app.cleanup_ctx.append(_publisher_ctx)

    async def readiness() -> dict[str, bool]:
        return {"kafka": app[PUBLISHER].ready}

    add_ops_routes(app, "ingest", readiness)
    app.router.add_post("/webhooks/events", canonical_webhook)
    return app
