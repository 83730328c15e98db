"""The read API's HTTP service (seed: message-status-api.txt; SPEC section 3)."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from urllib.parse import urlencode

import orjson
from aiohttp import web
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError

from msgstatus.web import add_ops_routes, problem_response
from query_api import params
from query_api.openapi import openapi_document
from query_api.reader import Reader
from query_api.settings import ApiSettings
from schemas import redis_client
from schemas.documents import render_history, render_list
from schemas.problems import Problem, invalid

SETTINGS = web.AppKey("settings", ApiSettings)
READER = web.AppKey("reader", Reader)
API_KEYS = web.AppKey("api_keys", tuple[bytes, ...])

JSON = "application/json"
PREFIX = "/api/messagestatus"
FORBIDDEN = Problem(403, "forbidden", "the X-Api-Key header is missing or not a valid key")
NOT_FOUND = Problem(404, "not-found", "no message with this id")
UNAVAILABLE = Problem(503, "store-unavailable", "the status store is not reachable; retry shortly")


def _authorized(request: web.Request) -> bool:
    """Constant-time check of ``X-Api-Key`` against every configured key (SPEC section 3)."""
    given = request.headers.get("X-Api-Key", "").encode()
    ok = False
    for key in request.app[API_KEYS]:
        ok |= hmac.compare_digest(given, key)
    return ok and bool(given)


def _unavailable(request: web.Request) -> web.Response:
    """503 while Redis is unreachable; clients retry after a second."""
    return problem_response(UNAVAILABLE, request, **{"Retry-After": "1"})


def _bad(request: web.Request, exc: params.BadParameter) -> web.Response:
    return problem_response(invalid(exc.name, str(exc)), request)


async def get_message(request: web.Request) -> web.Response:
    """``GET /api/messagestatus/{messageid}``: the message's document, or 400/403/404."""
    if not _authorized(request):
        return problem_response(FORBIDDEN, request)
    try:
        message_id = params.message_id(request.match_info["messageid"])
        document = await request.app[READER].document(message_id)
    except params.BadParameter as exc:
        return _bad(request, exc)
    except (RedisError, OSError):
        return _unavailable(request)
    if document is None:
        return problem_response(NOT_FOUND, request)
    return web.Response(body=document, content_type=JSON)


async def get_history(request: web.Request) -> web.Response:
    """``GET /api/messagestatus/{messageid}/history``: the distinct events, oldest first."""
    if not _authorized(request):
        return problem_response(FORBIDDEN, request)
    try:
        message_id = params.message_id(request.match_info["messageid"])
        state = await request.app[READER].state(message_id)
    except params.BadParameter as exc:
        return _bad(request, exc)
    except (RedisError, OSError):
        return _unavailable(request)
    if state is None:
        return problem_response(NOT_FOUND, request)
    return web.Response(body=render_history(message_id, state.visible_entries()), content_type=JSON)


async def _list(request: web.Request, index_key: str) -> web.Response:
    query = request.rel_url.query
    try:
        count = params.count(params.single(query, "count"))
        before = params.send_date(params.single(query, "sendDate"))
        after = params.cursor(params.single(query, "cursor"))
    except params.BadParameter as exc:
        return _bad(request, exc)
    reader = request.app[READER]
    try:
        docs, next_cursor = await reader.page(index_key, before, count, after)
    except (RedisError, OSError):
        return _unavailable(request)
    response = web.Response(body=render_list(docs), content_type=JSON)
    if next_cursor is not None:
        kept = {k: v for k, v in query.items() if k in ("count", "sendDate")}
        kept["cursor"] = next_cursor.encode()
        response.headers["Link"] = (
            f'<{request.raw_path.split("?", 1)[0]}?{urlencode(kept)}>; rel="next"'
        )
    return response


async def get_by_phone(request: web.Request) -> web.Response:
    """``GET /api/messagestatus/phonenumber/{phonenumber}``: latest messages to a number."""
    if not _authorized(request):
        return problem_response(FORBIDDEN, request)
    try:
        phone = params.phone_number(request.match_info["phonenumber"])
    except params.BadParameter as exc:
        return _bad(request, exc)
    return await _list(request, request.app[READER].index_key("p", phone))


async def get_by_reference(request: web.Request) -> web.Response:
    """``GET /api/messagestatus/reference/{referencekey}``: latest messages under a key.

    The key is taken from the raw path, so ``%2F`` inside it is part of the key.
    """
    if not _authorized(request):
        return problem_response(FORBIDDEN, request)
    raw = request.raw_path.split("?", 1)[0][len(PREFIX + "/reference/") :]
    try:
        key = params.reference_key(raw)
    except params.BadParameter as exc:
        return _bad(request, exc)
    return await _list(request, request.app[READER].index_key("r", key))


async def get_openapi(_request: web.Request) -> web.Response:
    """``GET /openapi.json``: the OpenAPI 3.1 document of this API (no key needed)."""
    return web.Response(body=orjson.dumps(openapi_document()), content_type=JSON)


async def _reader_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        timeout=5,
        **redis_client.async_options(),
    )
    redis = Redis(connection_pool=pool, decode_responses=False)
    reader = Reader(
        redis,
        settings.retention_ms,
        settings.generation_poll_s,
        settings.generation,
        settings.per_slot_lists,
    )
    app[READER] = reader
    await reader.start()
    yield
    await reader.stop()
    await redis.aclose()
    await pool.disconnect()


def create_app(settings: ApiSettings) -> web.Application:
    """Build the read API application; the Redis pool opens and closes with the app."""
    app = web.Application()
    app[SETTINGS] = settings
    app[API_KEYS] = tuple(k.encode() for k in settings.api_keys if k)
    app.cleanup_ctx.append(_reader_ctx)

    async def readiness() -> dict[str, bool]:
        try:
            ok = bool(await app[READER].redis.ping())
        except (RedisError, OSError):
            ok = False
        return {"redis": ok}

    add_ops_routes(app, "api", readiness)
    app.router.add_get(PREFIX + "/phonenumber/{phonenumber}", get_by_phone)
    app.router.add_get(PREFIX + "/reference/{referencekey:.+}", get_by_reference)
    # [^/]+ rather than aiohttp's default [^{}/]+: an id with braces is a 400 naming it.
    app.router.add_get(PREFIX + "/{messageid:[^/]+}/history", get_history)
    app.router.add_get(PREFIX + "/{messageid:[^/]+}", get_message)
    app.router.add_get("/openapi.json", get_openapi)
    return app
