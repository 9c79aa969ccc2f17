"""The gateway in this process (aiohttp on port 0, handler cancellation on, as `llmmesh-gateway`
runs it) in front of an in-process inference service: over gRPC, as the gateway process calls it,
or hosted beside it and calling it in-process, as the monolith runs it (`hosted=True`)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from prometheus_client import CollectorRegistry

from llmmesh.gateway.app import create_app
from llmmesh.gateway.hosted import serve_beside
from llmmesh.gateway.main import bound_port, start
from llmmesh.settings import GatewaySettings
from tests.support.inproc import InprocMesh


@dataclass
class Gateway:
    port: int
    registry: CollectorRegistry

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@asynccontextmanager
async def running_gateway(inference: int | InprocMesh, hosted: bool = False,
                          **overrides: object) -> AsyncIterator[Gateway]:
    """`inference`: the inference service's port, or the in-process mesh (needed with `hosted`)."""
    port = inference if isinstance(inference, int) else inference.port
    settings = dataclasses.replace(GatewaySettings(port=0, inference_target=f"127.0.0.1:{port}",
                                                   grace_period_s=2.0), **overrides)  # type: ignore[arg-type]
    if hosted:
        assert isinstance(inference, InprocMesh), "a hosted gateway needs the mesh it is hosted by"
        runner = await serve_beside(inference.server, f"127.0.0.1:{port}", settings)
        registry = inference.server.registry
    else:
        registry = CollectorRegistry()
        runner = await start(create_app(settings, registry), settings, settings.inference_target)
    try:
        yield Gateway(bound_port(runner, settings), registry)
    finally:
        await runner.cleanup()
