"""HTTP endpoints of the provider adapters, all of one shape, registered by one function.

Per request: refuse (401) an adapter without credentials unless it is listed in
``allow_unsigned_providers``; let the adapter check what the headers and query alone can
prove (credentials, signature headers) before the body is read, so an unauthenticated
upload is answered at once; read the body (aiohttp answers 413 over ``max_body_bytes``
before anything is parsed); let the adapter authenticate and map; publish and answer 2xx
only after Kafka acknowledged every event. Only this module turns adapter errors into HTTP
answers: 401 ``Unauthenticated``, 503 ``UnsignedRetry``, 400 ``InvalidBody``.

A receipt time further ahead of the receive time than ``max_clock_skew_s`` is replaced by
the receive time (logged): a receipt is never refused for its time (docs/providers.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from urllib.parse import parse_qsl, urlsplit

from aiohttp import web
from prometheus_client import Counter

from ingest.errors import BodyTimeout, InvalidBody, Unauthenticated, UnsignedRetry
from ingest.http import (
    Responder,
    accepted_response,
    body_timeout,
    invalid_body,
    publish_or_problem,
    read_body,
    unauthorized,
)
from ingest.providers.common import Adapter, Callback, Mapped
from ingest.providers.registry import Configured
from ingest.settings import IngestSettings
from runtime.web import problem_response
from schemas.events import EventRecord
from schemas.problems import UNSIGNED_CALLBACK, Problem
from schemas.tenancy import DEFAULT_TENANT

log = logging.getLogger(__name__)

SKIPPED = Counter(
    "msgstatus_provider_entries_skipped_total",
    "Provider callback entries acknowledged without a canonical event",
    ["adapter", "reason"],
)

Handler = Callable[[web.Request], Awaitable[web.Response]]


def provider_response(records: Sequence[EventRecord]) -> web.Response:
    """200 with ``{"accepted": n, "eventIds": [...]}``: Vonage documents 200/204 as success,
    and 200 is what every provider's retry logic treats as delivered."""
    return accepted_response(records, status=200)


def responder(answer: bytes | None) -> Responder:
    """The success answer an adapter declares (``AdapterSpec.answer``): 200 with exactly
    ``answer`` as ``text/plain`` (Jasmin resends a DLR otherwise), or :func:`provider_response`."""
    if answer is None:
        return provider_response

    def fixed(_records: Sequence[EventRecord]) -> web.Response:
        return web.Response(status=200, body=answer, content_type="text/plain")

    return fixed


def callback_of(request: web.Request, body: bytes, public_base_url: str | None) -> Callback:
    """The request as an adapter sees it; ``url`` is ``public_base_url`` + path and query as
    received (what the provider called through any proxy), else the URL as seen here."""
    raw = request.raw_path
    base = public_base_url or f"{request.scheme}://{request.host}"
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        headers.setdefault(name.lower(), value)
    return Callback(
        method=request.method,
        url=base + raw,
        query=tuple(parse_qsl(urlsplit(raw).query, keep_blank_values=True)),
        headers=headers,
        body=body,
        content_type=request.content_type.lower(),
        received_ms=int(time.time() * 1000),
    )


_QUIET_REASONS = frozenset({"no canonical event for this status"})
"""Skips that are the documented mapping (debug); every other reason is a warning."""


def _note_skipped(adapter: str, mapped: Mapped) -> None:
    for skip in mapped.skipped:
        SKIPPED.labels(adapter, skip.reason).inc()
        level = logging.DEBUG if skip.reason in _QUIET_REASONS else logging.WARNING
        log.log(
            level,
            "%s: no event for status %r (%s)%s",
            adapter,
            skip.provider_status[:40],
            skip.reason,
            f": {skip.detail}" if skip.detail else "",
        )


def _plausible(adapter: str, records: list[EventRecord], max_skew_s: int) -> list[EventRecord]:
    """The records with any ``occurredAt`` beyond receive time + ``max_skew_s`` replaced by the
    receive time (the event id, derived from the provider's fields, is unchanged)."""
    out = []
    for record in records:
        if record.occurred_ms > record.received_ms + max_skew_s * 1000:
            log.warning(
                "%s: event %s is dated %d s ahead of its receipt: the receive time is used",
                adapter,
                record.event_id,
                (record.occurred_ms - record.received_ms) // 1000,
            )
            out.append(record.model_copy(update={"occurred_ms": record.received_ms}))
        else:
            out.append(record)
    return out


def make_handler(
    adapter: Adapter,
    settings: IngestSettings,
    respond: Responder = provider_response,
    tenants: Sequence[tuple[str, Adapter]] = (),
) -> Handler:
    """The aiohttp handler of one adapter (see the module docstring for the answers).

    ``adapter`` holds the default tenant's credentials, ``tenants`` the same adapter with
    other tenants' credentials: the first whose credentials authenticate the callback names
    the tenant of its events (docs/operations.md, "Tenants, keys and audit"). A callback that
    none authenticates gets the first configured one's answer (401, or 503 when unsigned).
    """
    allowed_unsigned = adapter.name in settings.allow_unsigned_providers
    candidates = [(t, a) for t, a in ((DEFAULT_TENANT, adapter), *tenants) if a.configured]
    if not candidates and allowed_unsigned:
        candidates = [(DEFAULT_TENANT, adapter)]

    async def handler(request: web.Request) -> web.Response:
        if not candidates:
            return unauthorized(
                request, f"no credentials are configured for the {adapter.name} adapter"
            )
        try:
            head = callback_of(request, b"", settings.public_base_url)
            passed = _prechecked(candidates, head)
            body = await read_body(request)
            tenant, mapped = _authenticated(
                passed, callback_of(request, body, settings.public_base_url)
            )
        except BodyTimeout:
            return body_timeout(request)
        except UnsignedRetry as exc:
            problem = Problem.of(UNSIGNED_CALLBACK, str(exc))
            return problem_response(
                problem, request, **{"Retry-After": str(settings.retry_after_s)}
            )
        except Unauthenticated as exc:
            return unauthorized(request, str(exc))
        except InvalidBody as exc:
            return invalid_body(request, f"not a valid {adapter.name} callback", exc.errors)
        _note_skipped(adapter.name, mapped)
        records = _plausible(adapter.name, mapped.records, settings.max_clock_skew_s)
        if tenant != DEFAULT_TENANT:
            records = [r.model_copy(update={"tenant": tenant}) for r in records]
        return await publish_or_problem(request, records, respond)

    return handler


def _prechecked(
    candidates: Sequence[tuple[str, Adapter]], head: Callback
) -> list[tuple[str, Adapter]]:
    """The candidates whose header check passes; the first one's error when none does."""
    if len(candidates) == 1:
        candidates[0][1].precheck(head)
        return list(candidates)
    passed: list[tuple[str, Adapter]] = []
    first: Exception | None = None
    for tenant, adapter in candidates:
        try:
            adapter.precheck(head)
        except (Unauthenticated, UnsignedRetry) as exc:
            first = first or exc
        else:
            passed.append((tenant, adapter))
    if not passed:
        assert first is not None
        raise first
    return passed


def _authenticated(passed: Sequence[tuple[str, Adapter]], callback: Callback) -> tuple[str, Mapped]:
    """The tenant whose adapter authenticates and maps the callback, with its mapping."""
    first: Unauthenticated | None = None
    for tenant, adapter in passed:
        try:
            return tenant, adapter.handle(callback)
        except Unauthenticated as exc:
            first = first or exc
    assert first is not None
    raise first


def add_provider_routes(
    app: web.Application,
    settings: IngestSettings,
    adapters: Sequence[Configured],
    tenants: Mapping[str, Sequence[Configured]] | None = None,
) -> None:
    """Register ``/webhooks/<name>`` for every configured adapter, with the methods and the
    success answer its module declares (:mod:`ingest.providers.registry`); ``tenants``: the
    same adapters (same order) with each other tenant's credentials."""
    for i, (spec, adapter) in enumerate(adapters):
        others = [(tenant, configured[i][1]) for tenant, configured in (tenants or {}).items()]
        handler = make_handler(adapter, settings, responder(spec.answer), others)
        for method in spec.methods:
            app.router.add_route(method, f"/webhooks/{spec.name}", handler)
