"""HTTP to backends over one pooled aiohttp session, directly or through the Envoy egress.

Through the egress, the request goes to the egress URL with `x-llmmesh-backend` naming the backend
the router chose; Envoy routes it to that backend's cluster, where its active health checks and
outlier ejection apply. Every request carries the backend's credentials (its adapter's headers);
the egress originates TLS to https:// backends. Transport-level trouble is classified once, here,
into BackendFailure (try another backend) or BackendRejected (the request itself is bad), with the
backend's key redacted from whatever the backend said.

aiohttp rather than httpx: its C HTTP parser costs ~0.7x the CPU per relayed token
(docs/bench/inference-variants.md). A response left before its end (a cancelled caller, a failed
adapter) closes its connection, so the backend sees the disconnect at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson
from opentelemetry.trace import SpanKind

from llmmesh.common.backends import BACKEND_HEADER
from llmmesh.framework import tracing
from llmmesh.inference.failures import BackendFailure, BackendRejected, ModelMissing, Unsupported
from llmmesh.inference.pool import Backend

_ERROR_BODY_LIMIT = 4096
_JSON = {"content-type": "application/json"}


class Transport:
    def __init__(self, egress_url: str, connect_timeout_s: float, idle_timeout_s: float,
                 max_connections: int) -> None:
        self._egress = egress_url.rstrip("/")
        # `connect` covers waiting for a pooled connection too; `sock_read` is per chunk: a backend
        # silent for longer than the idle timeout has failed.
        self._timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout_s, sock_read=idle_timeout_s)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    @property
    def http(self) -> aiohttp.ClientSession:
        # Made on first use: a session belongs to the running event loop.
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections, limit_per_host=0),
                timeout=self._timeout, trust_env=False)
        return self._session

    def _target(self, backend: Backend, path: str) -> tuple[str, dict[str, str]]:
        headers = backend.protocol.headers
        if self._egress:
            return self._egress + path, {**headers, BACKEND_HEADER: backend.name}
        return backend.config.url + path, headers

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @asynccontextmanager
    async def stream(self, backend: Backend, path: str, body: dict[str, Any]) -> AsyncIterator[AsyncIterator[str]]:
        """POST and yield the response's lines; raises BackendFailure/BackendRejected/ModelMissing."""
        url, headers = self._target(backend, path)
        # A CLIENT span whose traceparent the egress and the backend continue (tracing on only).
        with tracing.span("POST", {"http.request.method": "POST", "url.full": url, "llmmesh.backend": backend.name,
                                   "llmmesh.backend.url": backend.config.url + path}, kind=SpanKind.CLIENT) as span:
            headers = {**headers, **_JSON}
            if span.is_recording():
                tracing.inject(headers)
            try:
                async with self.http.post(url, data=orjson.dumps(body), headers=headers) as resp:
                    span.set_attribute("http.response.status_code", resp.status)
                    if resp.status != 200:
                        await _raise_for_status(backend, resp)
                    yield _lines(backend, resp)
            except TimeoutError as exc:  # aiohttp's timeouts are TimeoutErrors (and some ClientErrors)
                raise BackendFailure(backend.name, f"timed out ({type(exc).__name__})") from None
            except aiohttp.ClientError as exc:
                raise BackendFailure(backend.name, backend.protocol.redact(
                    f"transport error ({type(exc).__name__}: {exc})")) from None

    async def get_json(self, backend: Backend, path: str, timeout_s: float) -> dict[str, Any]:
        url, headers = self._target(backend, path)
        return await self._json(backend, self.http.get(url, headers=headers,
                                                       timeout=aiohttp.ClientTimeout(total=timeout_s)))

    async def post_json(self, backend: Backend, path: str, body: dict[str, Any]) -> dict[str, Any]:
        url, headers = self._target(backend, path)
        return await self._json(backend, self.http.post(url, data=orjson.dumps(body), headers={**headers, **_JSON}))

    async def _json(self, backend: Backend, request: Any) -> dict[str, Any]:
        try:
            async with request as resp:
                if resp.status != 200:
                    await _raise_for_status(backend, resp)
                content = await resp.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise BackendFailure(backend.name, backend.protocol.redact(f"{type(exc).__name__}: {exc}")) from None
        return _decode(backend, content)


async def _lines(backend: Backend, resp: aiohttp.ClientResponse) -> AsyncIterator[str]:
    # Chunks split here rather than by StreamReader.readline: as cheap (relay_variants.py `readline`),
    # and no line-length limit (readline refuses lines over 128 KiB, e.g. a large tool call's).
    tail = b""
    try:
        async for chunk in resp.content.iter_any():
            if tail:
                chunk = tail + chunk
            *lines, tail = chunk.split(b"\n")
            for line in lines:
                yield line.rstrip(b"\r").decode(errors="replace")
        if tail:
            yield tail.rstrip(b"\r").decode(errors="replace")
    except TimeoutError:
        raise BackendFailure(backend.name, "went silent for longer than the idle timeout") from None
    except aiohttp.ClientError as exc:
        raise BackendFailure(backend.name, f"connection lost mid-stream ({type(exc).__name__})") from None


def _decode(backend: Backend, content: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(content)
    except orjson.JSONDecodeError:
        raise BackendFailure(backend.name, "response is not JSON") from None
    if not isinstance(doc, dict):
        raise BackendFailure(backend.name, "response is not a JSON object")
    return doc


async def _raise_for_status(backend: Backend, resp: aiohttp.ClientResponse) -> None:
    raw = b""
    async for chunk in resp.content.iter_any():
        raw += chunk
        if len(raw) > _ERROR_BODY_LIMIT:
            break
    message = raw[:_ERROR_BODY_LIMIT].decode(errors="replace").strip()
    try:
        doc = orjson.loads(message)
        err = doc.get("error", message) if isinstance(doc, dict) else message
        message = err.get("message", str(err)) if isinstance(err, dict) else str(err)
    except orjson.JSONDecodeError:
        pass
    message = backend.protocol.redact(message)
    status = resp.status
    if status == 404:
        raise ModelMissing(backend.name, message or "not found", status=status)
    if status in (400, 422):
        raise BackendRejected(backend.name, message or "bad request")
    if status == 501:
        raise Unsupported(backend.name, message or "not implemented")
    raise BackendFailure(backend.name, f"HTTP {status}: {message[:200]}", status=status)
