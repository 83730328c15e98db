"""HTTP plumbing both HTTP services share: problem responses, request metrics and ids, ops routes.

``/healthz`` answers while the process runs; ``/readyz`` runs the service's own check of its
Kafka/Redis connections; ``/metrics`` serves the Prometheus text format (docs/design.md §1).
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.typedefs import Handler
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

from runtime.gc_tuning import tune_gc
from runtime.logs import mask_digits, request_id
from schemas.problems import CONTENT_TYPE, INTERNAL_ERROR, PROBLEM_TYPES, TYPE_PATH, Problem

log = logging.getLogger(__name__)

REQUESTS = Counter(
    "msgstatus_http_requests_total", "HTTP requests served", ["service", "route", "status"]
)
LATENCY = Histogram(
    "msgstatus_http_request_duration_seconds",
    "HTTP request latency in seconds",
    ["service", "route"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)

ReadinessCheck = Callable[[], Awaitable[dict[str, bool]]]
"""Returns the state of each dependency, e.g. ``{"kafka": True, "redis": False}``."""

SERVICE = web.AppKey("service", str)
READINESS: web.AppKey[ReadinessCheck] = web.AppKey("readiness")


def problem_response(
    problem: Problem, request: web.Request | None = None, **headers: str
) -> web.Response:
    """An ``application/problem+json`` response for a problem document (RFC 9457)."""
    instance = request.path if request is not None and request.path.isprintable() else None
    return web.Response(
        status=problem.status,
        body=problem.to_json(instance),
        content_type=CONTENT_TYPE,
        headers=headers or None,
    )


def _route_label(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


_REQUEST_IDS = itertools.count(1)
_PROCESS_TAG = os.urandom(4).hex()
_SERIES: dict[tuple[str, str, str], tuple[Any, Any]] = {}


def _series(service: str, route: str, status: int) -> tuple[Any, Any]:
    """The counter and histogram children of one (service, route, status), looked up once:
    ``labels()`` on every request costs more than the rest of a cached read."""
    key = (service, route, str(status))
    found = _SERIES.get(key)
    if found is None:
        found = (REQUESTS.labels(*key), LATENCY.labels(service, route))
        _SERIES[key] = found
    return found


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give each request an id, count and time it per route, and turn stray errors into problems.

    aiohttp's own 404/405/413 become problem documents; an unexpected exception becomes a 500
    problem document without internals, and is logged with its traceback.
    """
    rid = request.headers.get("X-Request-Id", "")
    if not (0 < len(rid) <= 64 and rid.isprintable()):
        rid = f"{_PROCESS_TAG}-{next(_REQUEST_IDS):x}"  # unique per process and request
    token = request_id.set(rid)
    started = time.perf_counter()
    service = request.app[SERVICE]
    try:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            response = problem_response(Problem(exc.status, None, exc.reason), request)
            if exc.status == 405 and "Allow" in exc.headers:
                response.headers["Allow"] = exc.headers["Allow"]
        except ConnectionResetError:
            # The client went away mid-request (an aborted upload): nobody gets an answer,
            # and it is no server error. 499 is the customary status for the metrics.
            log.info("client closed the connection before the answer")
            response = web.Response(status=499)
        except Exception:
            log.exception("unhandled error")
            response = problem_response(
                Problem.of(INTERNAL_ERROR, "internal error; the request id is in the logs"),
                request,
            )
        response.headers["X-Request-Id"] = rid
        count, latency = _series(service, _route_label(request), response.status)
        count.inc()
        latency.observe(time.perf_counter() - started)
        return response
    finally:
        request_id.reset(token)


async def healthz(_request: web.Request) -> web.Response:
    """Liveness: the process is up and its event loop answers."""
    return web.Response(body=b'{"status":"ok"}', content_type="application/json")


async def readyz(request: web.Request) -> web.Response:
    """Readiness: 200 when every dependency works, 503 with the failing ones otherwise."""
    checks = await request.app[READINESS]()
    ok = all(checks.values())
    body = orjson.dumps({"status": "ready" if ok else "unavailable", "checks": checks})
    return web.Response(status=200 if ok else 503, body=body, content_type="application/json")


async def problem_page(request: web.Request) -> web.Response:
    """``/problems/<name>``: the page of a problem type this project owns (404 otherwise)."""
    kind = PROBLEM_TYPES.get(request.match_info["name"])
    if kind is None:
        raise web.HTTPNotFound(reason="no such problem type")
    text = f"{kind.title} ({kind.status})\n\n{kind.about}\n"
    return web.Response(text=text, content_type="text/plain")


async def metrics(_request: web.Request) -> web.Response:
    """Prometheus text exposition of this process's metrics."""
    resp = web.Response(body=generate_latest())
    resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return resp


def add_ops_routes(app: web.Application, service: str, readiness: ReadinessCheck) -> None:
    """Register ``/healthz``, ``/readyz``, ``/metrics``, the problem type pages and the request
    observer."""
    app[SERVICE] = service
    app[READINESS] = readiness
    app.middlewares.append(observe)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get(TYPE_PATH + "{name}", problem_page)


class MaskingAccessLogger(AbstractAccessLogger):
    """Access log line per request, phone numbers in the path masked (docs/pitfalls.md)."""

    @property
    def enabled(self) -> bool:
        """Only format lines that will be written (INFO): the check is cheaper than the line."""
        return self.logger.isEnabledFor(logging.INFO)

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        """One line: method, masked and escaped path, status, duration in ms, request id."""
        self.logger.info(
            "%s %s %s %.1fms",
            request.method,
            mask_digits(request.path).encode("unicode_escape").decode(),
            response.status,
            time * 1000,
            extra={"request_id": response.headers.get("X-Request-Id", "-")},
        )


def run(app: web.Application, host: str, port: int, shutdown_timeout_s: float) -> None:
    """Serve until SIGINT/SIGTERM; then stop accepting, let in-flight requests finish for up to
    ``shutdown_timeout_s`` seconds and run the app's cleanup (docs/pitfalls.md: aiohttp#3638)."""
    tune_gc()
    web.run_app(
        app,
        host=host,
        port=port,
        shutdown_timeout=shutdown_timeout_s,
        access_log_class=MaskingAccessLogger,
        print=None,
        handle_signals=True,
    )
