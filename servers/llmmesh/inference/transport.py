"""HTTP to backends over one pooled httpx client, directly or through the Envoy egress.

Through the egress, the request goes to the egress URL with `x-llmmesh-backend` naming the backend
the router chose; Envoy routes it to that backend's cluster, where its active health checks and
outlier ejection apply. Every request carries the backend's credentials (its adapter's headers);
the egress originates TLS to https:// backends. Transport-level trouble is classified once, here,
into BackendFailure (try another backend) or BackendRejected (the request itself is bad), with the
backend's key redacted from whatever the backend said.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from opentelemetry.trace import SpanKind

from llmmesh.common.backends import BACKEND_HEADER
from llmmesh.framework import tracing
from llmmesh.inference.failures import BackendFailure, BackendRejected, ModelMissing, Unsupported
from llmmesh.inference.pool import Backend

_ERROR_BODY_LIMIT = 4096


class Transport:
    def __init__(self, egress_url: str, connect_timeout_s: float, idle_timeout_s: float,
                 max_connections: int) -> None:
        self._egress = egress_url.rstrip("/")
        # `read` is per chunk: a backend silent for longer than the idle timeout has failed.
        timeout = httpx.Timeout(connect=connect_timeout_s, read=idle_timeout_s, write=10.0, pool=connect_timeout_s)
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self.http = httpx.AsyncClient(timeout=timeout, limits=limits, trust_env=False)

    def _target(self, backend: Backend, path: str) -> tuple[str, dict[str, str]]:
        headers = backend.protocol.headers
        if self._egress:
            return self._egress + path, {**headers, BACKEND_HEADER: backend.name}
        return backend.config.url + path, headers

    async def close(self) -> None:
        await self.http.aclose()

    @asynccontextmanager
    async def stream(self, backend: Backend, path: str, body: dict[str, Any]) -> AsyncIterator[AsyncIterator[str]]:
        """POST and yield the response's lines; raises BackendFailure/BackendRejected/ModelMissing."""
        url, headers = self._target(backend, path)
        # A CLIENT span whose traceparent the egress and the backend continue (tracing on only).
        with tracing.span("POST", {"http.request.method": "POST", "url.full": url, "llmmesh.backend": backend.name,
                                   "llmmesh.backend.url": backend.config.url + path}, kind=SpanKind.CLIENT) as span:
            if span.is_recording():
                headers = {**headers}
                tracing.inject(headers)
            try:
                async with self.http.stream("POST", url, json=body, headers=headers) as resp:
                    span.set_attribute("http.response.status_code", resp.status_code)
                    if resp.status_code != 200:
                        await _raise_for_status(backend, resp)
                    yield _lines(backend, resp)
            except httpx.TimeoutException as exc:
                raise BackendFailure(backend.name, f"timed out ({type(exc).__name__})") from None
            except httpx.TransportError as exc:
                raise BackendFailure(backend.name, backend.protocol.redact(
                    f"transport error ({type(exc).__name__}: {exc})")) from None

    async def get_json(self, backend: Backend, path: str, timeout_s: float) -> dict[str, Any]:
        url, headers = self._target(backend, path)
        try:
            resp = await self.http.get(url, headers=headers, timeout=timeout_s)
        except httpx.HTTPError as exc:
            raise BackendFailure(backend.name, backend.protocol.redact(f"{type(exc).__name__}: {exc}")) from None
        if resp.status_code != 200:
            await _raise_for_status(backend, resp)
        return _decode(backend, resp.content)

    async def post_json(self, backend: Backend, path: str, body: dict[str, Any]) -> dict[str, Any]:
        url, headers = self._target(backend, path)
        try:
            resp = await self.http.post(url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise BackendFailure(backend.name, backend.protocol.redact(f"{type(exc).__name__}: {exc}")) from None
        if resp.status_code != 200:
            await _raise_for_status(backend, resp)
        return _decode(backend, resp.content)


async def _lines(backend: Backend, resp: httpx.Response) -> AsyncIterator[str]:
    try:
        async for line in resp.aiter_lines():
            yield line
    except httpx.TimeoutException:
        raise BackendFailure(backend.name, "went silent for longer than the idle timeout") from None
    except httpx.TransportError as exc:
        raise BackendFailure(backend.name, f"connection lost mid-stream ({type(exc).__name__})") from None


def _decode(backend: Backend, content: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(content)
    except json.JSONDecodeError:
        raise BackendFailure(backend.name, "response is not JSON") from None
    if not isinstance(doc, dict):
        raise BackendFailure(backend.name, "response is not a JSON object")
    return doc


async def _raise_for_status(backend: Backend, resp: httpx.Response) -> None:
    raw = b""
    async for chunk in resp.aiter_bytes():
        raw += chunk
        if len(raw) > _ERROR_BODY_LIMIT:
            break
    message = raw[:_ERROR_BODY_LIMIT].decode(errors="replace").strip()
    try:
        doc = json.loads(message)
        err = doc.get("error", message) if isinstance(doc, dict) else message
        message = err.get("message", str(err)) if isinstance(err, dict) else str(err)
    except json.JSONDecodeError:
        pass
    message = backend.protocol.redact(message)
    status = resp.status_code
    if status == 404:
        raise ModelMissing(backend.name, message or "not found", status=status)
    if status in (400, 422):
        raise BackendRejected(backend.name, message or "bad request")
    if status == 501:
        raise Unsupported(backend.name, message or "not implemented")
    raise BackendFailure(backend.name, f"HTTP {status}: {message[:200]}", status=status)
