"""A SERVER span per HTTP request for the aiohttp apps (the gateway, the simulator), continuing
the caller's W3C traceparent. Installed only when tracing is on (`server_middlewares()`)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from opentelemetry.trace import SpanKind, Status, StatusCode

from llmmesh.framework import tracing

# Probes and scrapes every second would drown the requests worth a trace.
UNTRACED_PATHS = frozenset(("/health", "/healthz", "/ready", "/metrics", "/api/tags", "/api/ps", "/api/version"))


@web.middleware
async def trace_request(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.path in UNTRACED_PATHS:
        return await handler(request)
    route = request.match_info.route.resource.canonical if request.match_info.route.resource else request.path
    attributes = {"http.request.method": request.method, "url.path": request.path, "http.route": route}
    with tracing.span(f"{request.method} {route}", attributes, kind=SpanKind.SERVER,
                      parent=tracing.extract(request.headers)) as span:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            span.set_attribute("http.response.status_code", exc.status)
            raise
        span.set_attribute("http.response.status_code", response.status)
        if response.status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        return response


def server_middlewares() -> list[Any]:
    return [trace_request] if tracing.enabled() else []
