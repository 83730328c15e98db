"""Reference servers the targets of docs/design.md §7 are ratios to; each runs as one process.

``redis-get``: an aiohttp app whose handler does one Redis GET of a pre-serialised document
(key ``<key-prefix><id>``) and returns it as ``application/json`` (404 when absent), with
the same redis-py client, hiredis parser and pool size (64, blocking) as the read API.

``json-post``: a bare aiohttp POST handler that reads the body, parses it as JSON (orjson,
as ingest does) and answers 202 with ``{"accepted": n}``; nothing else.

Both run on the default asyncio event loop, without access logging, and also serve
``/healthz``. Usage::

    python -m bench.reference_servers redis-get --port 18080 --redis redis://127.0.0.1:6381/0
    python -m bench.reference_servers json-post --port 18081
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator

import orjson
from aiohttp import web
from redis.asyncio import BlockingConnectionPool, Redis

REDIS = web.AppKey("redis", Redis)
PREFIX = web.AppKey("prefix", str)
JSON = "application/json"


async def healthz(_request: web.Request) -> web.Response:
    """Liveness."""
    return web.Response(body=b'{"status":"ok"}', content_type=JSON)


async def get_document(request: web.Request) -> web.Response:
    """``GET /doc/{id}``: one Redis GET, the stored bytes as the body."""
    raw = await request.app[REDIS].get(request.app[PREFIX] + request.match_info["id"])
    if raw is None:
        return web.Response(status=404, body=b'{"title":"not found"}', content_type=JSON)
    return web.Response(body=raw, content_type=JSON)


async def post_json(request: web.Request) -> web.Response:
    """``POST /webhooks/events``: parse the JSON body, answer 202."""
    data = orjson.loads(await request.read())
    count = len(data) if isinstance(data, list) else 1
    return web.Response(status=202, body=b'{"accepted":%d}' % count, content_type=JSON)


def redis_get_app(redis_url: str, prefix: str, max_connections: int = 64) -> web.Application:
    """The one-Redis-GET reference."""
    app = web.Application()
    app[PREFIX] = prefix

    async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
        pool = BlockingConnectionPool.from_url(
            redis_url, max_connections=max_connections, timeout=5
        )
        app[REDIS] = Redis(connection_pool=pool, decode_responses=False)
        yield
        await app[REDIS].aclose()
        await pool.disconnect()

    app.cleanup_ctx.append(redis_ctx)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/doc/{id}", get_document)
    return app


def json_post_app(max_body: int = 8 * 1024 * 1024) -> web.Application:
    """The bare JSON POST reference (same body limit as ingest)."""
    app = web.Application(client_max_size=max_body)
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/webhooks/events", post_json)
    return app


def main() -> None:
    """Serve one reference app until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m bench.reference_servers")
    parser.add_argument("kind", choices=["redis-get", "json-post"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis", default="redis://127.0.0.1:6381/0")
    parser.add_argument("--key-prefix", default="msgstatus:benchref:")
    args = parser.parse_args()
    if args.kind == "redis-get":
        app = redis_get_app(args.redis, args.key_prefix)
    else:
        app = json_post_app()
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
