"""An ASGI application served from an aiohttp handler (the MCP SDK's transport is ASGI; the gateway
is aiohttp). One request in, the response streamed out as the application sends it; when the
client goes away the handler is cancelled and the application with it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

Scope = dict[str, Any]
Message = dict[str, Any]
AsgiApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]


def _scope(request: web.Request, extra: Mapping[str, Any]) -> Scope:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": f"{request.version.major}.{request.version.minor}",
        "method": request.method, "scheme": request.scheme, "path": request.path,
        "raw_path": request.raw_path.split("?", 1)[0].encode(), "root_path": "",
        "query_string": request.query_string.encode(),
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in request.headers.items()],
        "client": tuple(peer[:2]) if isinstance(peer, tuple) else None,
        "server": (request.host, 0), "state": {}, **extra,
    }


async def serve(app: AsgiApp, request: web.Request, extra_scope: Mapping[str, Any] | None = None) -> web.StreamResponse:
    """Run one request through `app`; `extra_scope` adds keys the application can read."""
    body = await request.read()
    delivered = False
    disconnected = asyncio.Event()
    response: web.StreamResponse | None = None

    async def receive() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await disconnected.wait()  # nothing more to read; the handler's cancellation ends the wait
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal response
        if message["type"] == "http.response.start":
            response = web.StreamResponse(status=message["status"])
            for name, value in message.get("headers", ()):
                response.headers.add(name.decode("latin-1"), value.decode("latin-1"))
            await response.prepare(request)
        elif message["type"] == "http.response.body" and response is not None:
            if message.get("body"):
                await response.write(message["body"])
            if not message.get("more_body", False):
                await response.write_eof()

    try:
        await app(_scope(request, extra_scope or {}), receive, send)
    finally:
        disconnected.set()
    if response is None:  # the application answered nothing: not expected of a conforming one
        return web.Response(status=500)
    return response
