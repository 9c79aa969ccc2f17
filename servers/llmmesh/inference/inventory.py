"""Keeps each backend's health and model inventory fresh (/api/tags + /api/ps, or /v1/models),
and learns what its models can do (llmmesh.inference.capabilities).

Probes go through the same transport as model calls, so behind the Envoy egress a backend that
Envoy's active health checks or outlier detection ejected answers 503 here and is marked down.
Capabilities are asked once per model (Ollama /api/show, llama.cpp /props); a backend that cannot
tell leaves them unknown and stays healthy.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

from llmmesh.common.backends import Protocol
from llmmesh.inference import capabilities
from llmmesh.inference.capabilities import Capabilities
from llmmesh.inference.failures import BackendFailure, BackendRejected, Unsupported
from llmmesh.inference.pool import Backend
from llmmesh.inference.transport import Transport

log = logging.getLogger("llmmesh.inference.inventory")


async def probe(transport: Transport, backend: Backend, timeout_s: float) -> None:
    paths = backend.protocol.inventory_paths
    try:
        docs = await asyncio.gather(*(transport.get_json(backend, p, timeout_s) for p in paths))
    except (BackendFailure, BackendRejected, KeyError, TypeError) as exc:
        if backend.healthy:
            log.warning("backend down", extra={"backend": backend.name, "error": str(exc)})
        backend.healthy = False
        backend.last_error = str(exc)[:300]
        return
    try:
        models, loaded = backend.protocol.inventory(docs[0], docs[1] if len(docs) > 1 else None)
    except (KeyError, TypeError, AttributeError):
        backend.healthy, backend.last_error = False, "malformed inventory response"
        return
    if not backend.healthy:
        log.info("backend up", extra={"backend": backend.name, "models": sorted(models)})
    backend.healthy = True
    backend.models, backend.loaded = models, loaded
    backend.last_error = ""
    for gone in set(backend.capabilities) - models:
        del backend.capabilities[gone]
    if backend.config.protocol is Protocol.OLLAMA:
        await _learn_ollama(transport, backend, docs[1] if len(docs) > 1 else None, timeout_s)
    else:
        await _learn_openai(transport, backend, docs[0], timeout_s)


# A capability probe the backend could not answer: the capabilities stay unknown.
_UNANSWERED = (BackendFailure, BackendRejected, Unsupported, KeyError, TypeError, ValueError, AttributeError)


async def _learn_ollama(transport: Transport, backend: Backend, ps: dict[str, Any] | None, timeout_s: float) -> None:
    async def show(model: str) -> None:
        try:
            doc = await asyncio.wait_for(transport.post_json(backend, "/api/show", {"model": model}), timeout_s)
            backend.capabilities[model] = capabilities.ollama_show(doc)
        except (*_UNANSWERED, TimeoutError) as exc:
            log.info("model capabilities unknown", extra={"backend": backend.name, "model": model, "error": str(exc)})

    await asyncio.gather(*(show(m) for m in backend.models if m not in backend.capabilities))
    # A loaded model's window is the num_ctx it runs with, which a later load will most likely reuse.
    for model, window in capabilities.ollama_loaded_windows(ps).items():
        if model in backend.capabilities:
            backend.capabilities[model] = dataclasses.replace(backend.capabilities[model], context_window=window)


async def _learn_openai(transport: Transport, backend: Backend, models: dict[str, Any], timeout_s: float) -> None:
    if all(m in backend.capabilities for m in backend.models):
        return
    windows = capabilities.openai_windows(models)
    try:  # llama.cpp's server properties; other servers have no /props (404)
        props = capabilities.llama_props(await transport.get_json(backend, "/props", timeout_s))
    except _UNANSWERED as exc:
        if type(exc) is BackendFailure:  # down or slow for a moment (not a 404): ask again next refresh
            return
        props = Capabilities()
    for model in backend.models:
        backend.capabilities[model] = Capabilities(props.context_window or windows.get(model, 0), props.native_tools)


class InventoryRefresher:
    def __init__(self, transport: Transport, backends: list[Backend], interval_s: float, timeout_s: float) -> None:
        self._transport = transport
        self._backends = backends
        self._interval = interval_s
        self._timeout = timeout_s
        self._task: asyncio.Task[None] | None = None

    async def refresh(self) -> None:
        await asyncio.gather(*(probe(self._transport, b, self._timeout) for b in self._backends))

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.refresh()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
