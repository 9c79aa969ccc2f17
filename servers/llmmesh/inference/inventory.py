"""Keeps each backend's health and model inventory fresh (/api/tags + /api/ps, or /v1/models).

Probes go through the same transport as model calls, so behind the Envoy egress a backend that
Envoy's active health checks or outlier detection ejected answers 503 here and is marked down.
"""

from __future__ import annotations

import asyncio
import logging

from llmmesh.inference.failures import BackendFailure, BackendRejected
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
