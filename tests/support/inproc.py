"""A mesh in this process: one real grpc.aio server (port 0) hosting the chosen services, over real
simulator backends. Fast enough to build per test; e2e tests use tests.support.mesh instead."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import grpc
from prometheus_client import CollectorRegistry

from llmmesh.framework.server import MeshServer, create_server
from llmmesh.inference.v1 import inference_service_pb2_grpc as pb_grpc
from llmmesh.settings import CacheSettings, InferenceSettings, PatternLimits, Settings, SharedStateSettings
from llmmesh.simulator.config import SimulatorConfig
from llmmesh.simulator.runner import RunningSimulator
from tests.support.sims import start_sims


@dataclass
class InprocMesh:
    server: MeshServer
    port: int
    stub: pb_grpc.InferenceServiceStub
    sims: list[RunningSimulator]
    channel: grpc.aio.Channel


def _backend_spec(config: SimulatorConfig, sim: RunningSimulator, options: str = "") -> str:
    # Simulators named oai* are reached through their OpenAI-compatible API.
    return f"{config.name}={sim.url}" + ("#openai" if config.name.startswith("oai") else "") + options


@asynccontextmanager
async def inproc_mesh(settings: Settings, registry: CollectorRegistry, *configs: SimulatorConfig,
                      services: tuple[str, ...] = ("inference",), limits: dict[str, Any] | None = None,
                      backend_options: dict[str, str] | None = None, cache: CacheSettings | None = None,
                      shared_state: SharedStateSettings | None = None,
                      **inference_overrides: Any) -> AsyncIterator[InprocMesh]:
    """`backend_options` maps a simulator's name to options of its backend spec (";ctx=2048");
    `cache` and `shared_state` replace the settings' (the response cache is on by default: a test
    that counts backend calls of identical deterministic requests turns it off)."""
    sims = await start_sims(*configs)
    options = {"backoff_s": 0.01, "idle_timeout_s": 2.0, "inventory_refresh_s": 0.5, **inference_overrides}
    inference = dataclasses.replace(
        InferenceSettings(), backends=tuple(_backend_spec(c, s, (backend_options or {}).get(c.name, ""))
                                            for c, s in zip(configs, sims, strict=True)),
        **options)
    full = dataclasses.replace(settings, services=services, inference=inference,
                               limits=dataclasses.replace(PatternLimits(), **(limits or {})),
                               cache=cache or settings.cache, shared_state=shared_state or settings.shared_state)
    srv, port = create_server(full, registry)
    await srv.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield InprocMesh(srv, port, pb_grpc.InferenceServiceStub(channel), sims, channel)
    finally:
        await channel.close()
        await srv.stop()
        for s in sims:
            await s.stop()
