"""The browser playground: a static page (HTML, vanilla JS, CSS; no build step, nothing from a CDN)
that calls the mesh's REST routes: by default from the same origin, the ingress, which routes
/playground here; or an API base URL typed into the page (another origin must be allowed by the
ingress: LLMMESH_CORS_ORIGINS). An API key typed into the page stays in the tab's sessionStorage
and goes only to that API, as `Authorization: Bearer`."""

from __future__ import annotations

import html
from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).resolve().parent / "static"
_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".png": "image/png",
          ".svg": "image/svg+xml"}
# Where the page's REST calls go; filled into index.html's <meta name="llmmesh-api-base">.
_API_BASE_MARKER = "{{API_BASE}}"


def _asset(name: str) -> Path | None:
    path = (STATIC / name).resolve()
    if path.parent != STATIC or not path.is_file() or path.suffix not in _TYPES:
        return None
    return path


def add_routes(app: web.Application, api_base: str) -> None:
    index = (STATIC / "index.html").read_text().replace(_API_BASE_MARKER, html.escape(api_base, quote=True))

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=index, content_type="text/html", headers={"cache-control": "no-cache"})

    async def asset(request: web.Request) -> web.Response:
        if request.match_info["name"] == "index.html":
            return await page(request)
        path = _asset(request.match_info["name"])
        if path is None:
            raise web.HTTPNotFound(text="no such playground file")
        return web.Response(body=path.read_bytes(), content_type=_TYPES[path.suffix],
                            headers={"cache-control": "no-cache"})

    app.router.add_get("/playground", page)
    app.router.add_get("/playground/", page)
    app.router.add_get("/playground/{name}", asset)
