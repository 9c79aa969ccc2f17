"""`create_app(settings)`: the gateway's aiohttp application.

Routes: the OpenAI API under /v1/, the Ollama API at its /api/<name> paths, the patterns as an MCP
server at /mcp, the playground under /playground, and — on the gateway's own port only, the
ingress does not route them — `/healthz` and Prometheus `/metrics`.

One middleware per request: request id (Envoy's x-request-id, else a new one), metrics, one JSON
log line, and errors in the shape of the API the path belongs to (no stack trace leaves the
process; an unexpected failure answers `internal error (request id …)`, and that id is in the log).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from llmmesh.framework import request_context
from llmmesh.framework.http_tracing import server_middlewares
from llmmesh.gateway import mcp_server, ollama_api, openai_api, playground
from llmmesh.gateway.errors import ApiError
from llmmesh.gateway.metrics import GatewayMetrics
from llmmesh.gateway.upstream import INFERENCE, SETTINGS, Inference, Upstream
from llmmesh.settings import GatewaySettings

log = logging.getLogger("llmmesh.gateway")

REGISTRY: web.AppKey[CollectorRegistry] = web.AppKey("registry", CollectorRegistry)
METRICS: web.AppKey[GatewayMetrics] = web.AppKey("metrics", GatewayMetrics)
# Probes and scrapes: neither logged nor counted.
_QUIET = frozenset(("/healthz", "/metrics"))

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _route(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


# Path prefix -> how that API renders an error body.
_ERROR_BODIES: tuple[tuple[str, Callable[[ApiError], dict]], ...] = (
    ("/v1/", ApiError.openai_body),
    ("/api/", ApiError.ollama_body),
)


def _error_body(path: str) -> Callable[[ApiError], dict] | None:
    return next((body for prefix, body in _ERROR_BODIES if path.startswith(prefix)), None)


def _error_response(exc: ApiError, body: Callable[[ApiError], dict]) -> web.Response:
    return web.json_response(body(exc), status=exc.status, headers=exc.headers)


def _as_api_error(exc: web.HTTPException) -> ApiError:
    code = "unknown_url" if exc.status == 404 else None
    return ApiError(exc.status, exc.reason, "invalid_request_error", None, code)


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in _QUIET:
        return await handler(request)
    rid = request.headers.get("x-request-id") or uuid.uuid4().hex
    token = request_context.request_id.set(rid[:128])
    metrics, route = request.app[METRICS], _route(request)
    started = time.perf_counter()
    status = 500
    metrics.in_flight.labels(route).inc()
    try:
        resp = await _answer(request, handler, rid)
        status = resp.status
        return resp
    except asyncio.CancelledError:
        # The client went away; its model call was cancelled with it.
        status = 499
        metrics.disconnects.labels(route).inc()
        raise
    except ConnectionError as exc:
        # The client went away mid-stream (a write failed); the model call was cancelled with the
        # stream. Ended as aiohttp ends a request whose client is gone: no error logged, the
        # connection closed.
        status = 499
        metrics.disconnects.labels(route).inc()
        raise asyncio.CancelledError from exc
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        elapsed = time.perf_counter() - started
        metrics.in_flight.labels(route).dec()
        metrics.requests.labels(route, request.method, str(status)).inc()
        metrics.duration.labels(route, request.method).observe(elapsed)
        log.info("http request", extra={"method": request.method, "path": request.path, "status": status,
                                        "duration_ms": round(elapsed * 1000, 2)})
        request_context.request_id.reset(token)


async def _answer(request: web.Request, handler: Handler, rid: str) -> web.StreamResponse:
    body = _error_body(request.path)
    try:
        return await handler(request)
    except ApiError as exc:
        return _error_response(exc, body or ApiError.openai_body)
    except web.HTTPException as exc:
        if body is not None and exc.status >= 400:
            return _error_response(_as_api_error(exc), body)
        raise
    except (asyncio.CancelledError, ConnectionError):
        raise
    except Exception as exc:
        log.error("unhandled error in %s", request.path, exc_info=exc)
        if body is None:
            raise
        return _error_response(ApiError(500, f"internal error (request id {rid})", "server_error"), body)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[REGISTRY])
    return web.Response(body=body, headers={"content-type": CONTENT_TYPE_LATEST})


def create_app(settings: GatewaySettings, registry: CollectorRegistry | None = None,
               inference: Inference | None = None, patterns: Upstream | None = None) -> web.Application:
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[*server_middlewares(), observe])
    registry = registry if registry is not None else CollectorRegistry()
    app[REGISTRY] = registry
    app[METRICS] = GatewayMetrics.create(registry)
    app[SETTINGS] = settings
    app[INFERENCE] = inference or Inference(settings.inference_target, settings.tls)
    # The monolith's inference target hosts the patterns too: one channel for both then.
    if patterns is None:
        patterns = (app[INFERENCE] if settings.patterns_target in ("", settings.inference_target)
                    else Upstream(settings.patterns_target, settings.tls))

    async def close_channels(app: web.Application) -> None:
        await app[INFERENCE].close()
        await patterns.close()

    app.on_cleanup.append(close_channels)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    openai_api.add_routes(app)
    ollama_api.add_routes(app)
    mcp_server.McpFront(settings, patterns, mcp_server.authenticator(settings)).add_routes(app)
    playground.add_routes(app, settings.playground_api_url)
    return app
