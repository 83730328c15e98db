"""The read API's HTTP service (docs/design.md §3)."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlencode

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler
from redis.exceptions import RedisError

from query_api import params
from query_api.deliveries import add_delivery_routes
from query_api.desk import add_desk_routes
from query_api.openapi import openapi_document
from query_api.progress import ProjectionProgress
from query_api.reader import Reader
from query_api.settings import ApiSettings
from runtime import redis_client
from runtime.web import READINESS_DETAIL, add_ops_routes, problem_response
from schemas import problems
from schemas.documents import render_history, render_list
from schemas.problems import Problem, invalid
from schemas.stored import MessageState

SETTINGS = web.AppKey("settings", ApiSettings)
READER = web.AppKey("reader", Reader)
API_KEYS = web.AppKey("api_keys", tuple[bytes, ...])
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


def _authorized(request: web.Request) -> bool:
    """Constant-time check of ``X-Api-Key`` against every configured key (docs/design.md §3)."""
    given = request.headers.get("X-Api-Key", "").encode()
    ok = False
    for key in request.app[API_KEYS]:
        ok |= hmac.compare_digest(given, key)
    return ok and bool(given)


def api_route(
    parse: Callable[[web.Request], P],
    read: Callable[[Reader, P], Awaitable[R]],
    render: Callable[[web.Request, P, R], web.Response],
) -> Handler:
    """The ``/api`` middleware around one endpoint's parse, read and render steps.

    It checks the API key (403), maps :class:`params.BadParameter` from ``parse`` to a 400
    naming the parameter, and Redis being unreachable during ``read`` to a 503. Built per
    route rather than as an aiohttp middleware, so a cached read (GET by id, a benchmarked
    hot path) awaits nothing beyond the one Redis call.
    """

    async def handler(request: web.Request) -> web.Response:
        if not _authorized(request):
            return problem_response(BAD_KEY, request)
        try:
            query = parse(request)
            found = await read(request.app[READER], query)
        except params.BadParameter as exc:
            return problem_response(invalid(exc.name, str(exc)), request)
        except (RedisError, OSError):
            return problem_response(STORE_DOWN, request, **{"Retry-After": "1"})
        return render(request, query, found)

    return handler


def _message_id(request: web.Request) -> str:
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
    """A list request, parsed: the index to range, the send-time bound, count and cursor."""

    index_key: str
    before_ms: int
    count: int
    after: params.Cursor | None


def _list_query(request: web.Request, index_key: str) -> ListQuery:
    query = request.rel_url.query
    count = params.count(params.single(query, "count"))
    before_ms = params.send_date(params.single(query, "sendDate"))
    after = params.cursor(params.single(query, "cursor"))
    if after is not None and after.score >= before_ms:
        # Both bound the page from above: the tighter one holds. A cursor past sendDate
        # (a hand-edited link, or sendDate changed while paging) never widens the list.
        after = None
    return ListQuery(index_key, before_ms, count, after)


def _by_phone(request: web.Request) -> ListQuery:
    phone = params.phone_number(request.match_info["phonenumber"])
    return _list_query(request, request.app[READER].index_key("p", phone))


def _by_reference(request: web.Request) -> ListQuery:
    # From the raw path, so that ``%2F`` inside the key stays part of the key.
    raw = request.raw_path.split("?", 1)[0][len(PREFIX + "/reference/") :]
    key = params.reference_key(raw)
    return _list_query(request, request.app[READER].index_key("r", key))


async def _page(reader: Reader, q: ListQuery) -> tuple[bytes, params.Cursor | None]:
    return await reader.page(q.index_key, q.before_ms, q.count, q.after)


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


get_message = api_route(_message_id, Reader.document, _message)
"""``GET /api/messagestatus/{messageid}``: the message's document, or 400/403/404."""

get_history = api_route(_message_id, Reader.state, _history)
"""``GET /api/messagestatus/{messageid}/history``: the distinct events, oldest first."""

get_by_phone = api_route(_by_phone, _page, _list)
"""``GET /api/messagestatus/phonenumber/{phonenumber}``: latest messages to a number."""

get_by_reference = api_route(_by_reference, _page, _list)
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
        pool_wait_s=5,
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


def create_app(settings: ApiSettings) -> web.Application:
    """Build the read API application; the Redis pool opens and closes with the app."""
    app = web.Application()
    app[SETTINGS] = settings
    app[API_KEYS] = tuple(k.encode() for k in settings.api_keys if k)
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
    add_delivery_routes(app, _authorized, lambda a: a[READER].redis, settings)
    return app
