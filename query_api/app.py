"""The read API's HTTP service (docs/design.md §3)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlencode

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler
from redis.exceptions import RedisError

from query_api import params, scoped
from query_api.audit import AuditLog
from query_api.deliveries import add_delivery_routes
from query_api.desk import add_desk_routes
from query_api.keys import ApiKey, KeyRing
from query_api.openapi import openapi_document
from query_api.progress import ProjectionProgress
from query_api.reader import Reader
from query_api.settings import ApiSettings
from runtime import logs, redis_client
from runtime.web import READINESS_DETAIL, add_ops_routes, problem_response
from schemas import problems
from schemas.audit import Action, AuditRecord, mask_phone
from schemas.documents import render_history, render_list
from schemas.problems import Problem, invalid
from schemas.stored import MessageState
from schemas.tenancy import Scope

SETTINGS = web.AppKey("settings", ApiSettings)
READER = web.AppKey("reader", Reader)
KEYS = web.AppKey("api_keys", KeyRing)
AUDIT = web.AppKey("audit", AuditLog)
PROGRESS = web.AppKey("progress", ProjectionProgress)

JSON = "application/json"
PREFIX = "/api/messagestatus"
BAD_KEY = Problem.of(problems.FORBIDDEN, "the X-Api-Key header is missing or not a valid key")
UNKNOWN_ID = Problem.of(problems.NOT_FOUND, "no message with this id")
STORE_DOWN = Problem.of(
    problems.STORE_UNAVAILABLE, "the status store is not reachable; retry shortly"
)

P = TypeVar("P")
R = TypeVar("R")

DESK_HEADER = "X-Msgstatus-Client"
"""The support desk's page sends ``X-Msgstatus-Client: desk`` with its calls: every read made
through it is audited, reads by id and history included."""

Audited = Callable[[P, R], tuple[Action, str, int]]
"""What an audited read reads: ``(action, subject, results)``."""


def caller(request: web.Request) -> ApiKey | None:
    """The API key of ``X-Api-Key``, compared in constant time (query_api.keys), or None."""
    return request.app[KEYS].lookup(request.headers.get("X-Api-Key", ""))


def via_desk(request: web.Request) -> bool:
    """True for the support desk's calls."""
    return request.headers.get(DESK_HEADER) == "desk"


def audit(request: web.Request, key: ApiKey, action: Action, subject: str, results: int) -> None:
    """Record one read in the audit trail (topic and log line; query_api.audit)."""
    request.app[AUDIT].record(
        AuditRecord.model_construct(
            at_ms=int(time.time() * 1000),
            key_id=key.key_id,
            tenant=key.scope.tenant,
            action=action,
            subject=subject,
            results=results,
            via="desk" if via_desk(request) else "api",
            request_id=logs.request_id.get(),
        )
    )


def api_route(
    parse: Callable[[web.Request, Scope], P],
    read: Callable[[Reader, Scope, P], Awaitable[R]],
    render: Callable[[web.Request, P, R], web.Response],
    audited: Audited[P, R] | None = None,
    always: bool = False,
) -> Handler:
    """The ``/api`` middleware around one endpoint's parse, read and render steps.

    It checks the API key (403) and derives its :class:`Scope`, which ``parse`` and ``read``
    get; maps :class:`params.BadParameter` from ``parse`` to a 400 naming the parameter, and
    Redis being unreachable during ``read`` to a 503. ``audited`` says what an audited read
    read: lists (``always``) are audited on every call, other reads when they come from the
    support desk. Built per route rather than as an aiohttp middleware, so a cached read (GET
    by id, a benchmarked hot path) awaits nothing beyond the one Redis call.
    """

    async def handler(request: web.Request) -> web.Response:
        key = caller(request)
        if key is None:
            return problem_response(BAD_KEY, request)
        try:
            query = parse(request, key.scope)
            # One bound for the whole read, retries and waiting for a pooled connection
            # included: a hung Redis is a 503 after it, never a wait (TimeoutError is an
            # OSError).
            async with asyncio.timeout(request.app[SETTINGS].read_deadline_s):
                found = await read(request.app[READER], key.scope, query)
        except params.BadParameter as exc:
            return problem_response(invalid(exc.name, str(exc)), request)
        except (RedisError, OSError):
            return problem_response(STORE_DOWN, request, **{"Retry-After": "1"})
        if audited is not None and (always or via_desk(request)):
            audit(request, key, *audited(query, found))
        return render(request, query, found)

    return handler


def _message_id(request: web.Request, _scope: Scope) -> str:
    return params.message_id(request.match_info["messageid"])


def _message(request: web.Request, _id: str, document: bytes | None) -> web.Response:
    if document is None:
        return problem_response(UNKNOWN_ID, request)
    return web.Response(body=document, content_type=JSON)


def _history(request: web.Request, message_id: str, state: MessageState | None) -> web.Response:
    if state is None:
        return problem_response(UNKNOWN_ID, request)
    return web.Response(body=render_history(message_id, state.visible_entries()), content_type=JSON)


@dataclass(frozen=True, slots=True)
class ListQuery:
    """A list request, parsed: the index to range, the send-time bound, count and cursor;
    what it lists for the audit (``action``, ``subject``: masked number or reference)."""

    index_key: str
    before_ms: int
    count: int
    after: params.Cursor | None
    action: Action = "phonenumber"
    subject: str = ""


def _list_query(
    request: web.Request, scope: Scope, index_key: str, action: Action, subject: str
) -> ListQuery:
    query = request.rel_url.query
    count = params.count(params.single(query, "count"))
    before_ms = params.send_date(params.single(query, "sendDate"))
    after = params.cursor(params.single(query, "cursor"))
    if after is not None and after.tag != scope.tag():
        # A cursor is a position in one scope's list: under another key's scope it is
        # refused rather than followed (docs/operations.md, "Tenants, keys and audit").
        raise params.BadParameter("cursor", "was made for another API key's scope")
    if after is not None and after.score >= before_ms:
        # Both bound the page from above: the tighter one holds. A cursor past sendDate
        # (a hand-edited link, or sendDate changed while paging) never widens the list.
        after = None
    return ListQuery(index_key, before_ms, count, after, action, subject)


def _by_phone(request: web.Request, scope: Scope) -> ListQuery:
    phone = params.phone_number(request.match_info["phonenumber"])
    index = request.app[READER].index_key("p", phone, scope.tenant)
    return _list_query(request, scope, index, "phonenumber", mask_phone(phone))


def _by_reference(request: web.Request, scope: Scope) -> ListQuery:
    # From the raw path, so that ``%2F`` inside the key stays part of the key.
    raw = request.raw_path.split("?", 1)[0][len(PREFIX + "/reference/") :]
    key = params.reference_key(raw)
    index = request.app[READER].index_key("r", key, scope.tenant)
    return _list_query(request, scope, index, "reference", key)


async def _page(reader: Reader, scope: Scope, q: ListQuery) -> tuple[bytes, params.Cursor | None]:
    return await scoped.page(
        reader, scope, q.index_key, before_ms=q.before_ms, count=q.count, after=q.after
    )


def _listed(q: ListQuery, page: tuple[bytes, params.Cursor | None]) -> tuple[Action, str, int]:
    return q.action, q.subject, scoped.count_listed(page[0])


def _found(action: Action) -> Audited[str, object]:
    def audited(message_id: str, found: object) -> tuple[Action, str, int]:
        return action, message_id, int(found is not None)

    return audited


def _list(
    request: web.Request, _q: ListQuery, page: tuple[bytes, params.Cursor | None]
) -> web.Response:
    """The list document; a ``rel="next"`` link carries the cursor when more messages follow."""
    docs, next_cursor = page
    response = web.Response(body=render_list(docs), content_type=JSON)
    if next_cursor is not None:
        query = request.rel_url.query
        kept = {k: v for k, v in query.items() if k in ("count", "sendDate")}
        kept["cursor"] = next_cursor.encode()
        response.headers["Link"] = (
            f'<{request.raw_path.split("?", 1)[0]}?{urlencode(kept)}>; rel="next"'
        )
    return response


get_message = api_route(_message_id, scoped.document, _message, _found("message"))
"""``GET /api/messagestatus/{messageid}``: the message's document, or 400/403/404."""

get_history = api_route(_message_id, scoped.state, _history, _found("history"))
"""``GET /api/messagestatus/{messageid}/history``: the distinct events, oldest first."""

get_by_phone = api_route(_by_phone, _page, _list, _listed, always=True)
"""``GET /api/messagestatus/phonenumber/{phonenumber}``: latest messages to a number."""

get_by_reference = api_route(_by_reference, _page, _list, _listed, always=True)
"""``GET /api/messagestatus/reference/{referencekey}``: latest messages under a key."""


async def get_openapi(_request: web.Request) -> web.Response:
    """``GET /openapi.json``: the OpenAPI 3.1 document of this API (no key needed)."""
    return web.Response(body=orjson.dumps(openapi_document()), content_type=JSON)


async def _reader_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    redis = redis_client.async_client(
        settings.redis_url,
        timeout_s=settings.redis_timeout_s,
        max_connections=settings.redis_max_connections,
        pool_wait_s=settings.redis_timeout_s,
        retries=1,  # one more attempt after a closed connection; the read deadline bounds all
    )
    reader = Reader(
        redis,
        settings.retention_ms,
        settings.generation_poll_s,
        settings.generation,
        # A cluster has no single node on which the list script could read every message.
        settings.per_slot_lists or settings.redis_cluster,
    )
    app[READER] = reader
    await reader.start()
    yield
    await reader.stop()
    await redis.aclose()


async def _keys_ctx(app: web.Application) -> AsyncIterator[None]:
    """Follow the keys file (SIGHUP, changes) while the app runs (query_api.keys)."""
    async with app[KEYS].follow():
        yield


async def _audit_ctx(app: web.Application) -> AsyncIterator[None]:
    """Publish audit records in the background while the app runs (query_api.audit)."""
    async with app[AUDIT].running(app[SETTINGS].shutdown_timeout_s / 2):
        yield


async def _progress_ctx(app: web.Application) -> AsyncIterator[None]:
    """Follow the served projection's rebuild marker (query_api.progress) while the app runs."""
    reader = app[READER]
    progress = ProjectionProgress(reader.redis, lambda: reader.generation)
    app[PROGRESS] = progress
    task = asyncio.create_task(progress.follow(), name="projection-progress")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _visible(request: web.Request, scope: Scope, message_id: str) -> bool:
    """True when the message is known and inside ``scope`` (its deliveries may be read)."""
    return await scoped.document(request.app[READER], scope, message_id) is not None


def create_app(settings: ApiSettings) -> web.Application:
    """Build the read API application; the Redis pool opens and closes with the app."""
    app = web.Application()
    app[SETTINGS] = settings
    app[KEYS] = KeyRing(settings.api_keys_file, settings.api_keys, settings.api_keys_poll_s)
    app[AUDIT] = AuditLog(settings, settings.audit_queue_max)
    app.cleanup_ctx.append(_keys_ctx)
    app.cleanup_ctx.append(_audit_ctx)
    app.cleanup_ctx.append(_reader_ctx)
    app.cleanup_ctx.append(_progress_ctx)

    async def readiness() -> dict[str, bool]:
        """Redis answers, and no rebuild of the served projection is behind the log."""
        try:
            async with asyncio.timeout(1.0):
                ok = await redis_client.ping(app[READER].redis)
                complete = await app[PROGRESS].check()
        except (RedisError, OSError, TimeoutError):
            ok = complete = False
        return {"redis": ok, "projection": complete}

    add_ops_routes(app, "api", readiness)
    # A lambda: app[PROGRESS] exists only once the app has started.
    app[READINESS_DETAIL] = lambda: app[PROGRESS].detail()  # noqa: PLW0108
    app.router.add_get(PREFIX + "/phonenumber/{phonenumber}", get_by_phone)
    # [\s\S]: any character, line breaks too, so every key reaches the handler (400 or 200).
    app.router.add_get(PREFIX + "/reference/{referencekey:[\\s\\S]+}", get_by_reference)
    # [^/]+ rather than aiohttp's default [^{}/]+: an id with braces is a 400 naming it.
    app.router.add_get(PREFIX + "/{messageid:[^/]+}/history", get_history)
    app.router.add_get(PREFIX + "/{messageid:[^/]+}", get_message)
    app.router.add_get("/openapi.json", get_openapi)
    add_desk_routes(app)
    add_delivery_routes(
        app, caller, _visible, audit, redis_of=lambda a: a[READER].redis, settings=settings
    )
    return app
