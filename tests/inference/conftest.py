"""An inference server (real grpc.aio, port 0) over real simulator backends."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import grpc
import pytest

from llmmesh.framework.server import MeshServer, create_server
from llmmesh.inference.v1 import inference_service_pb2_grpc as pb_grpc
from llmmesh.settings import InferenceSettings, Settings
from llmmesh.simulator.config import SimulatorConfig
from llmmesh.simulator.runner import RunningSimulator
from tests.support.sims import start_sims


@dataclass
class InferenceMesh:
    server: MeshServer
    stub: pb_grpc.InferenceServiceStub
    sims: list[RunningSimulator]
    channel: grpc.aio.Channel


MeshFactory = Callable[..., "asynccontextmanager[InferenceMesh]"]


@pytest.fixture
def inference_mesh(settings: Settings, registry):
    @asynccontextmanager
    async def make(*configs: SimulatorConfig, **overrides) -> AsyncIterator[InferenceMesh]:
        sims = await start_sims(*configs)
        backends = tuple(f"{c.name}={s.url}" + ("#openai" if c.name.startswith("oai") else "")
                         for c, s in zip(configs, sims, strict=True))
        options = {"backoff_s": 0.01, "idle_timeout_s": 2.0, "inventory_refresh_s": 0.5, **overrides}
        inference = dataclasses.replace(InferenceSettings(), backends=backends, **options)
        srv, port = create_server(dataclasses.replace(settings, services=("inference",), inference=inference),
                                  registry)
        await srv.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        try:
            yield InferenceMesh(srv, pb_grpc.InferenceServiceStub(channel), sims, channel)
        finally:
            await channel.close()
            await srv.stop()
            for s in sims:
                await s.stop()

    return make
