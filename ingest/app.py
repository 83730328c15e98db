"""The ingest HTTP service: webhook endpoints that publish canonical events to Kafka."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable

import orjson
from aiohttp import web

from ingest.admission import Admission
from ingest.canonical import parse_body, parse_wire_yielding
from ingest.errors import BodyTimeout, InvalidBody, Unauthenticated
from ingest.http import (
    ADMISSION,
    PUBLISHER,
    SETTINGS,
    admit,
    body_timeout,
    invalid_body,
    publish_or_problem,
    read_body,
    unauthorized,
)
from ingest.openapi import openapi_document
from ingest.providers.fields import strip_bom
from ingest.providers.registry import ProviderIds, build
from ingest.providers.routes import add_provider_routes
from ingest.publisher import Publisher
from ingest.settings import IngestSettings
from ingest.signing import StandardWebhookVerifier
from runtime.web import add_ops_routes
from schemas.events import EventRecord
from schemas.problems import FieldError
from schemas.tenancy import DEFAULT_TENANT

log = logging.getLogger(__name__)

VERIFIERS: web.AppKey[tuple[tuple[str, StandardWebhookVerifier], ...]] = web.AppKey("verifiers")
"""Each tenant's canonical-webhook verifier, the default tenant's first (ingest.settings)."""
PROVIDER_IDS = web.AppKey("provider_ids", ProviderIds)


async def canonical_webhook(request: web.Request) -> web.Response:
    """``POST /webhooks/events``: one canonical event or an array (docs/design.md §4).

    Provider ids of events that name an adapter's provider (``twilio``, ``vonage``, ...) are
    normalised the way that adapter normalises them (docs/providers.md), so an acceptance
    posted here matches the adapter's receipts whatever the id's case or leading zeros.
    The events belong to the tenant whose secret signed them (docs/operations.md, "Tenants,
    keys and audit").
    """
    verifiers = request.app[VERIFIERS]
    settings = request.app[SETTINGS]
    if not verifiers and "events" not in settings.allow_unsigned_providers:
        return unauthorized(request, "no webhook secret is configured (MSGSTATUS_WEBHOOK_SECRET)")
    tenant = DEFAULT_TENANT
    try:
        if verifiers:
            StandardWebhookVerifier.precheck(request.headers)  # before the body: headers alone
        body = await read_body(request)
        body.decode()  # JSON is UTF-8: named as the problem before the signature is checked
        if verifiers:
            tenant = _signer(verifiers, body, request)
    except BodyTimeout:
        return body_timeout(request)
    except UnicodeDecodeError as exc:
        error = FieldError("body", f"JSON is UTF-8; byte {exc.start} is not")
        return invalid_body(request, "the body is not UTF-8", [error])
    except Unauthenticated as exc:
        return unauthorized(request, str(exc))
    body = strip_bom(body)  # after the signature check: it covers the bytes as sent
    normalize = request.app[PROVIDER_IDS].normalize
    publishing: Awaitable[web.Response]
    try:
        if tenant == DEFAULT_TENANT:
            # The fast path writes the default tenant's records, which carry no tenant field.
            wired = await parse_wire_yielding(
                body, settings.max_batch_events, normalize, max_skew_s=settings.max_clock_skew_s
            )
            publishing = publish_or_problem(request, wired)
        else:
            parsed = parse_body(
                body, settings.max_batch_events, normalize, max_skew_s=settings.max_clock_skew_s
            )
            publishing = publish_or_problem(request, _of_tenant(parsed, tenant))
    except InvalidBody as exc:
        return invalid_body(request, "the body is not a valid event batch", exc.errors)
    return await publishing


def _signer(
    verifiers: tuple[tuple[str, StandardWebhookVerifier], ...], body: bytes, request: web.Request
) -> str:
    """The tenant whose secret signed the body; raises the first tenant's
    :class:`Unauthenticated` when none did. One secret (one tenant): one check, as before."""
    first: Unauthenticated | None = None
    for tenant, verifier in verifiers:
        try:
            verifier.verify(body, request.headers)
        except Unauthenticated as exc:
            first = first or exc
        else:
            return tenant
    assert first is not None
    raise first


def _of_tenant(records: list[EventRecord], tenant: str) -> list[EventRecord]:
    return [r.model_copy(update={"tenant": tenant}) for r in records]


async def get_openapi(_request: web.Request) -> web.Response:
    """``GET /openapi.json``: the OpenAPI 3.1 document of ingest (ingest.openapi)."""
    return web.Response(body=orjson.dumps(openapi_document()), content_type="application/json")


async def _publisher_ctx(app: web.Application) -> AsyncIterator[None]:
    publisher = Publisher(app[SETTINGS])
    app[PUBLISHER] = publisher
    await publisher.start()
    yield
    await publisher.stop()


def create_app(settings: IngestSettings) -> web.Application:
    """Build the ingest application; the Kafka producer opens and closes with the app.

    Routes: ``POST /webhooks/events`` (canonical) and the provider adapters
    (``/webhooks/twilio``, ``/webhooks/vonage``, ...; see :mod:`ingest.providers.routes`).
    Bodies over ``max_body_bytes`` get 413 before they are parsed; webhooks past the bound on
    events in flight get 503 before they are read (:mod:`ingest.admission`).
    """
    app = web.Application(client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app[ADMISSION] = Admission(settings.max_events_in_flight, settings.produce_timeout_s / 4)
    tenants = settings.tenants()
    app[VERIFIERS] = tuple(
        (tenant, StandardWebhookVerifier(s.webhook_secret.get_secret_value()))
        for tenant, s in tenants.items()
        if s.webhook_secret and s.webhook_secret.get_secret_value()
    )
    adapters = build(settings)
    app[PROVIDER_IDS] = ProviderIds.of(adapters)
    app.cleanup_ctx.append(_publisher_ctx)

    async def readiness() -> dict[str, bool]:
        return {"kafka": app[PUBLISHER].ready}

    add_ops_routes(app, "ingest", readiness)
    # After the request observer, so shed requests get a request id and their metrics.
    app.middlewares.append(admit)
    app.router.add_post("/webhooks/events", canonical_webhook)
    app.router.add_get("/openapi.json", get_openapi)
    others = {tenant: build(s) for tenant, s in tenants.items() if tenant != DEFAULT_TENANT}
    add_provider_routes(app, settings, adapters, others)
    return app
