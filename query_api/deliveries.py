"""The push endpoints of the read API: a message's deliveries, and asking for them again.

``GET /api/messagestatus/{messageid}/deliveries``: per endpoint its state and the attempts
(time, endpoint host, HTTP status, latency, error class; never a response body);
``POST /api/messagestatus/{messageid}/deliveries/resend``: queue the last delivery of each
endpoint again (202 with the count). Both read the notifier's state through its contract
(schemas.deliveries) and need an ``X-Api-Key`` like every read (docs/push.md). A message
outside the key's scope (schemas.tenancy) answers exactly as an unknown id does here: no
deliveries (200 with none; a resend queues 0), and nothing of its state is read. Calls from
the support desk are audited.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler
from redis.asyncio import Redis
from redis.exceptions import RedisError

from query_api import params
from query_api.keys import ApiKey
from query_api.settings import ApiSettings
from runtime.web import problem_response
from schemas import deliveries, problems
from schemas.audit import Action
from schemas.problems import Problem, invalid
from schemas.tenancy import Scope

PREFIX = "/api/messagestatus"
FORBIDDEN = Problem.of(problems.FORBIDDEN, "the X-Api-Key header is missing or not a valid key")
UNAVAILABLE = Problem.of(
    problems.STORE_UNAVAILABLE, "the status store is not reachable; retry shortly"
)

Caller = Callable[[web.Request], ApiKey | None]
Visible = Callable[[web.Request, Scope, str], Awaitable[bool]]
Audit = Callable[[web.Request, ApiKey, Action, str, int], None]
RedisOf = Callable[[web.Application], Redis]

CALLER: web.AppKey[Caller] = web.AppKey("deliveries_caller")
VISIBLE: web.AppKey[Visible] = web.AppKey("deliveries_visible")
AUDIT: web.AppKey[Audit] = web.AppKey("deliveries_audit")
REDIS_OF: web.AppKey[RedisOf] = web.AppKey("deliveries_redis")
NAMESPACE = web.AppKey("deliveries_namespace", str)
TTL_MS = web.AppKey("deliveries_ttl_ms", int)
DEADLINE_S = web.AppKey("deliveries_deadline_s", float)


def _bounded(handler: Handler) -> Handler:
    """``handler`` within the read deadline (``ApiSettings.read_deadline_s``): a Redis that
    does not answer makes it a 503, as every other read of the API."""

    async def bounded(request: web.Request) -> web.StreamResponse:
        try:
            async with asyncio.timeout(request.app[DEADLINE_S]):
                return await handler(request)
        except TimeoutError:
            return problem_response(UNAVAILABLE, request, **{"Retry-After": "1"})

    return bounded


async def _guarded(request: web.Request, action: Action) -> tuple[str, Redis | None] | web.Response:
    """The message id and the Redis client to read its deliveries with (None: the message is
    not in the key's scope, so it has none to show), or the error response."""
    key = request.app[CALLER](request)
    if key is None:
        return problem_response(FORBIDDEN, request)
    try:
        message_id = params.message_id(request.match_info["messageid"])
        visible = await request.app[VISIBLE](request, key.scope, message_id)
    except params.BadParameter as exc:
        return problem_response(invalid(exc.name, str(exc)), request)
    except (RedisError, OSError):
        return problem_response(UNAVAILABLE, request, **{"Retry-After": "1"})
    if request.headers.get("X-Msgstatus-Client") == "desk":
        request.app[AUDIT](request, key, action, message_id, int(visible))
    return message_id, request.app[REDIS_OF](request.app) if visible else None


async def get_deliveries(request: web.Request) -> web.Response:
    """The message's deliveries per endpoint and its latest attempts, newest first."""
    found = await _guarded(request, "deliveries")
    if isinstance(found, web.Response):
        return found
    message_id, redis = found
    if redis is None:
        document = {"messageId": message_id, "endpoints": [], "attempts": []}
        return web.Response(body=orjson.dumps(document), content_type="application/json")
    try:
        document = await deliveries.read_deliveries(redis, request.app[NAMESPACE], message_id)
    except (RedisError, OSError):
        return problem_response(UNAVAILABLE, request, **{"Retry-After": "1"})
    return web.Response(body=orjson.dumps(document), content_type="application/json")


async def post_resend(request: web.Request) -> web.Response:
    """Queue the last delivery of every endpoint of the message again (new ``webhook-id``)."""
    found = await _guarded(request, "resend")
    if isinstance(found, web.Response):
        return found
    message_id, redis = found
    if redis is None:
        body = orjson.dumps({"messageId": message_id, "queued": 0})
        return web.Response(status=202, body=body, content_type="application/json")
    try:
        queued = await deliveries.resend(
            redis,
            request.app[NAMESPACE],
            message_id,
            int(time.time() * 1000),
            request.app[TTL_MS],
        )
    except (RedisError, OSError):
        return problem_response(UNAVAILABLE, request, **{"Retry-After": "1"})
    body = orjson.dumps({"messageId": message_id, "queued": queued})
    return web.Response(status=202, body=body, content_type="application/json")


def add_delivery_routes(
    app: web.Application,
    caller: Caller,
    visible: Visible,
    audit: Audit,
    *,
    redis_of: RedisOf,
    settings: ApiSettings,
) -> None:
    """Register the two routes; ``caller`` finds the API key, ``visible`` says whether a
    message is inside its scope, ``audit`` records a desk call, ``redis_of`` gives the app's
    Redis client; the notifier's namespace and the retention come from ``settings``."""
    app[CALLER] = caller
    app[VISIBLE] = visible
    app[AUDIT] = audit
    app[REDIS_OF] = redis_of
    app[NAMESPACE] = deliveries.key_namespace(settings.namespace, settings.redis_cluster)
    app[TTL_MS] = settings.retention_ms
    app[DEADLINE_S] = settings.read_deadline_s
    app.router.add_get(PREFIX + "/{messageid:[^/]+}/deliveries", _bounded(get_deliveries))
    app.router.add_post(PREFIX + "/{messageid:[^/]+}/deliveries/resend", _bounded(post_resend))
