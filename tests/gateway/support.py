"""The gateway in this process (aiohttp on port 0, handler cancellation on, as `llmmesh-gateway`
runs it) in front of an in-process inference service."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CollectorRegistry

from llmmesh.gateway.app import create_app
from llmmesh.settings import GatewaySettings


@dataclass
class Gateway:
    port: int
    registry: CollectorRegistry

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@asynccontextmanager
async def running_gateway(inference_port: int, **overrides: object) -> AsyncIterator[Gateway]:
    settings = dataclasses.replace(GatewaySettings(port=0, inference_target=f"127.0.0.1:{inference_port}"),
                                   **overrides)  # type: ignore[arg-type]
    registry = CollectorRegistry()
    runner = web.AppRunner(create_app(settings, registry), handler_cancellation=True, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield Gateway(runner.addresses[0][1], registry)
    finally:
        await runner.cleanup()
