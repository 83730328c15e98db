"""The support desk: a static page at ``/desk`` (HTML, one ES module, CSS) for support agents.

The page calls the read API's JSON endpoints from the same origin with the agent's API key;
this module only serves its files, read once at start-up, with headers that keep the page
to its own origin: ``Content-Security-Policy: default-src 'self'`` (no inline script, no
third-party request), ``nosniff``, ``no-referrer`` and ``no-store``. The files are public:
they hold no data, and every data call needs the key (docs/design.md §3, §8).
"""

from __future__ import annotations

from importlib.resources import files

from aiohttp import web

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

FILES = {
    "index.html": "text/html; charset=utf-8",
    "desk.js": "text/javascript; charset=utf-8",
    "desk.css": "text/css; charset=utf-8",
    "provider-codes.json": "application/json",
    "favicon.svg": "image/svg+xml",
}
"""The desk's files (``query_api/desk_static/``) and their content types."""

STATIC = web.AppKey("desk_static", dict[str, tuple[bytes, str]])


def _load() -> dict[str, tuple[bytes, str]]:
    folder = files("query_api").joinpath("desk_static")
    return {name: (folder.joinpath(name).read_bytes(), kind) for name, kind in FILES.items()}


def _serve(request: web.Request, name: str) -> web.Response:
    found = request.app[STATIC].get(name)
    if found is None:
        raise web.HTTPNotFound
    body, content_type = found
    response = web.Response(body=body, headers=SECURITY_HEADERS)
    response.headers["Content-Type"] = content_type
    return response


async def desk_page(request: web.Request) -> web.Response:
    """``GET /desk``: the desk's HTML page."""
    return _serve(request, "index.html")


async def desk_file(request: web.Request) -> web.Response:
    """``GET /desk/{name}``: the page's script, style sheet, status table or icon."""
    name = request.match_info["name"]
    return _serve(request, "index.html" if name == "" else name)


def add_desk_routes(app: web.Application) -> None:
    """Register ``/desk`` and ``/desk/{file}`` on the read API."""
    app[STATIC] = _load()
    app.router.add_get("/desk", desk_page)
    app.router.add_get("/desk/{name:[a-z.-]*}", desk_file)
