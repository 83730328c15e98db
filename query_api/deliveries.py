"""The push endpoints of the read API: a message's deliveries, and asking for them again.

``GET /api/messagestatus/{messageid}/deliveries``: per endpoint its state and the attempts
(time, endpoint host, HTTP status, latency, error class; never a response body);
``POST /api/messagestatus/{messageid}/deliveries/resend``: queue the last delivery of each
endpoint again (202 with the count). Both read the notifier's state through its contract
(schemas.deliveries) and need an ``X-Api-Key`` like every read (docs/push.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import orjson
from aiohttp import web
from redis.asyncio import Redis
from redis.exceptions import RedisError

from query_api import params
from query_api.settings import ApiSettings
from runtime.web import problem_response
from schemas import deliveries, problems
from schemas.problems import Problem, invalid

PREFIX = "/api/messagestatus"
FORBIDDEN = Problem.of(problems.FORBIDDEN, "the X-Api-Key header is missing or not a valid key")
UNAVAILABLE = Problem.of(
    problems.STORE_UNAVAILABLE, "the status store is not reachable; retry shortly"
)

Authorized = Callable[[web.Request], bool]
RedisOf = Callable[[web.Application], Redis]

AUTHORIZED: web.AppKey[Authorized] = web.AppKey("deliveries_authorized")
REDIS_OF: web.AppKey[RedisOf] = web.AppKey("deliveries_redis")
NAMESPACE = web.AppKey("deliveries_namespace", str)
TTL_MS = web.AppKey("deliveries_ttl_ms", int)


async def _guarded(request: web.Request) -> tuple[str, Redis] | web.Response:
    if not request.app[AUTHORIZED](request):
        return problem_response(FORBIDDEN, request)
    try:
        message_id = params.message_id(request.match_info["messageid"])
    except params.BadParameter as exc:
        return problem_response(invalid(exc.name, str(exc)), request)
    return message_id, request.app[REDIS_OF](request.app)


async def get_deliveries(request: web.Request) -> web.Response:
    """The message's deliveries per endpoint and its latest attempts, newest first."""
    found = await _guarded(request)
    if isinstance(found, web.Response):
        return found
    message_id, redis = found
    try:
        document = await deliveries.read_deliveries(redis, request.app[NAMESPACE], message_id)
    except (RedisError, OSError):
        return problem_response(UNAVAILABLE, request, **{"Retry-After": "1"})
    return web.Response(body=orjson.dumps(document), content_type="application/json")


async def post_resend(request: web.Request) -> web.Response:
    """Queue the last delivery of every endpoint of the message again (new ``webhook-id``)."""
    found = await _guarded(request)
    if isinstance(found, web.Response):
        return found
    message_id, redis = found
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
    authorized: Authorized,
    redis_of: RedisOf,
    settings: ApiSettings,
) -> None:
    """Register the two routes; ``authorized`` checks the API key, ``redis_of`` gives the
    app's Redis client; the notifier's namespace and the retention come from ``settings``."""
    app[AUTHORIZED] = authorized
    app[REDIS_OF] = redis_of
    app[NAMESPACE] = deliveries.key_namespace(settings.namespace, settings.redis_cluster)
    app[TTL_MS] = settings.retention_ms
    app.router.add_get(PREFIX + "/{messageid:[^/]+}/deliveries", get_deliveries)
    app.router.add_post(PREFIX + "/{messageid:[^/]+}/deliveries/resend", post_resend)
