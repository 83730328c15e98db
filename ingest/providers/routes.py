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
from collections.abc import Awaitable, Callable, Sequence
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
    adapter: Adapter, settings: IngestSettings, respond: Responder = provider_response
) -> Handler:
    """The aiohttp handler of one adapter (see the module docstring for the answers)."""
    allowed_unsigned = adapter.name in settings.allow_unsigned_providers

    async def handler(request: web.Request) -> web.Response:
        if not adapter.configured and not allowed_unsigned:
            return unauthorized(
                request, f"no credentials are configured for the {adapter.name} adapter"
            )
        try:
            adapter.precheck(callback_of(request, b"", settings.public_base_url))
            body = await read_body(request)
            mapped = adapter.handle(callback_of(request, body, settings.public_base_url))
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
        return await publish_or_problem(request, records, respond)

    return handler


def add_provider_routes(
    app: web.Application, settings: IngestSettings, adapters: Sequence[Configured]
) -> None:
    """Register ``/webhooks/<name>`` for every configured adapter, with the methods and the
    success answer its module declares (:mod:`ingest.providers.registry`)."""
    for spec, adapter in adapters:
        handler = make_handler(adapter, settings, responder(spec.answer))
        for method in spec.methods:
            app.router.add_route(method, f"/webhooks/{spec.name}", handler)
