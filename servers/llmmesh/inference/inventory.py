"""Keeps each backend's health and model inventory fresh (/api/tags + /api/ps, or /v1/models),
and learns what its models can do (llmmesh.inference.capabilities).

Probes go through the same transport as model calls, so behind the Envoy egress a backend that
Envoy's active health checks or outlier detection ejected answers 503 here and is marked down.
Capabilities are asked once per model (Ollama /api/show, llama.cpp /props); a backend that cannot
tell leaves them unknown and stays healthy. An OpenAI-compatible backend configured with
continuation=auto (the default) learns it here too: llama.cpp (`owned_by: llamacpp`, or a /props
that answers) echoes, vLLM (`owned_by: vllm`) needs the flag, anything else stays auto (an echo,
if any, is stripped). Anthropic serves every model it lists, all with tools.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from llmmesh.common.backends import Continuation, Protocol
from llmmesh.inference import capabilities
from llmmesh.inference.capabilities import Capabilities
from llmmesh.inference.failures import BackendFailure, BackendRejected, Unsupported
from llmmesh.inference.pool import Backend
from llmmesh.inference.protocols import OpenAIProtocol
from llmmesh.inference.transport import Transport

log = logging.getLogger("llmmesh.inference.inventory")


async def probe(transport: Transport, backend: Backend, timeout_s: float) -> dict[str, str]:
    """Refresh `backend`'s health, models and capabilities; returns its models' digests (none when
    it is down or its API reports none)."""
    try:
        docs = await _inventory_docs(transport, backend, timeout_s)
    except (BackendFailure, BackendRejected, KeyError, TypeError) as exc:
        if backend.healthy:
            log.warning("backend down", extra={"backend": backend.name, "error": str(exc)})
        backend.healthy = False
        backend.last_error = str(exc)[:300]
        return {}
    try:
        models, loaded = backend.protocol.inventory(docs[0], docs[1] if len(docs) > 1 else None)
        digests = backend.protocol.digests(docs[0])
    except (KeyError, TypeError, AttributeError):
        backend.healthy, backend.last_error = False, "malformed inventory response"
        return {}
    if not backend.healthy:
        log.info("backend up", extra={"backend": backend.name, "models": sorted(models)})
    backend.healthy = True
    backend.models, backend.loaded = models, loaded
    backend.last_error = ""
    for gone in set(backend.capabilities) - models:
        del backend.capabilities[gone]
    if backend.config.protocol is Protocol.OLLAMA:
        await _learn_ollama(transport, backend, docs[1] if len(docs) > 1 else None, timeout_s)
    elif backend.config.protocol is Protocol.ANTHROPIC:
        # Every Claude model calls tools; /v1/models tells no window (the backend's `ctx` may).
        backend.capabilities = {m: Capabilities(0, True) for m in models}
    else:
        await _learn_openai(transport, backend, docs[0], timeout_s)
    return digests


# A backend that fails a probe is marked down until the next refresh, and every request for its
# models is refused meanwhile: one failed attempt (a connection lost in passing) is asked again first.
PROBE_ATTEMPTS = 2
PROBE_RETRY_PAUSE_S = 0.2


async def _inventory_docs(transport: Transport, backend: Backend, timeout_s: float) -> list[Any]:
    def fetch() -> Awaitable[list[Any]]:
        return asyncio.gather(*(transport.get_json(backend, p, timeout_s) for p in backend.protocol.inventory_paths))

    for _ in range(PROBE_ATTEMPTS - 1):
        try:
            return await fetch()
        except (BackendFailure, BackendRejected):
            await asyncio.sleep(PROBE_RETRY_PAUSE_S)
    return await fetch()


# A capability probe the backend could not answer: the capabilities stay unknown.
_UNANSWERED = (BackendFailure, BackendRejected, Unsupported, KeyError, TypeError, ValueError, AttributeError)


async def _learn_ollama(transport: Transport, backend: Backend, ps: dict[str, Any] | None, timeout_s: float) -> None:
    async def show(model: str) -> None:
        try:
            doc = await asyncio.wait_for(transport.post_json(backend, backend.protocol.path("/api/show"),
                                                             {"model": model}), timeout_s)
            backend.capabilities[model] = capabilities.ollama_show(doc)
        except (*_UNANSWERED, TimeoutError) as exc:
            log.info("model capabilities unknown", extra={"backend": backend.name, "model": model, "error": str(exc)})

    await asyncio.gather(*(show(m) for m in backend.models if m not in backend.capabilities))
    # A loaded model's window is the num_ctx it runs with, which a later load will most likely reuse.
    for model, window in capabilities.ollama_loaded_windows(ps).items():
        if model in backend.capabilities:
            backend.capabilities[model] = dataclasses.replace(backend.capabilities[model], context_window=window)


async def _learn_openai(transport: Transport, backend: Backend, models: dict[str, Any], timeout_s: float) -> None:
    learning = backend.config.continuation is Continuation.AUTO
    if learning:
        # How the server treats a continuation, when /v1/models names it (llama.cpp, vLLM).
        backend.protocol.continuation = OpenAIProtocol.continuation_of(models) or backend.protocol.continuation
    if all(m in backend.capabilities for m in backend.models):
        return
    windows = capabilities.openai_windows(models)
    try:  # llama.cpp's server properties; other servers have no /props (404)
        raw = await transport.get_json(backend, backend.protocol.path("/props"), timeout_s)
        props = capabilities.llama_props(raw)
        backend.slots = backend.config.slots or int(raw.get("total_slots") or 0)
    except _UNANSWERED as exc:
        if type(exc) is BackendFailure:  # down or slow for a moment (not a 404): ask again next refresh
            return
        props = Capabilities()
    else:
        if learning and "default_generation_settings" in raw:  # only llama.cpp has /props
            backend.protocol.continuation = Continuation.ECHO
    for model in backend.models:
        backend.capabilities[model] = Capabilities(props.context_window or windows.get(model, 0), props.native_tools)


class InventoryRefresher:
    def __init__(self, transport: Transport, backends: list[Backend], interval_s: float, timeout_s: float,
                 on_refresh: Callable[[], None] = lambda: None) -> None:
        self._transport = transport
        # Called after every refresh: health gauges and queued requests follow what it found.
        self._on_refresh = on_refresh
        self._backends = backends
        self._interval = interval_s
        self._timeout = timeout_s
        self._task: asyncio.Task[None] | None = None
        # Backend name -> its models' digests, as last probed (the response cache keys on them).
        self._digests: dict[str, dict[str, str]] = {}

    async def refresh(self) -> None:
        found = await asyncio.gather(*(probe(self._transport, b, self._timeout) for b in self._backends))
        self._digests = {b.name: d for b, d in zip(self._backends, found, strict=True)}
        self._on_refresh()

    def digests(self, model: str) -> tuple[str, ...]:
        """The distinct digests of `model` on the backends that report one (sorted)."""
        found = {d.get(model) or d.get(f"{model}:latest") for d in self._digests.values()}
        return tuple(sorted(x for x in found if x))

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
