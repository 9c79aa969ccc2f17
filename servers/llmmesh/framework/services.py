"""Which servicer implements each topology service, and how one gets built and registered.

Services without an implementation yet are served by their generated base servicer, which
answers UNIMPLEMENTED for every method: never a fake result.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc
from prometheus_client import CollectorRegistry

from llmmesh.framework.identity import ServiceIdentity
from llmmesh.framework.local_channel import HandlerTable
from llmmesh.framework.quotas import Quotas
from llmmesh.framework.shared_state import LocalState, SharedState
from llmmesh.patterns.presets import Presets
from llmmesh.runs.log import RunLog
from llmmesh.settings import Settings
from llmmesh.topology.description import ServiceSpec


@dataclass(frozen=True)
class ServiceDeps:
    settings: Settings
    registry: CollectorRegistry
    # Address of the inference service for pattern services (this process's own in the monolith).
    inference_target: str
    # How this process authenticates its calls to other services (service key, mutual TLS).
    identity: ServiceIdentity = field(default_factory=ServiceIdentity)
    # Per-key buckets shared by the services of this process (token budgets live in inference).
    quotas: Quotas = field(default_factory=Quotas)
    # The store behind the quotas, also the response cache's and fairness counters' (in this
    # process, or Redis shared by every replica: llmmesh.framework.shared_state).
    shared_state: SharedState = field(default_factory=LocalState)
    # The run store's writer, shared by the services of this process (started by the first that
    # stores or reads runs; None: runs are not stored).
    runs: RunLog | None = None
    # Named analysis presets requests may name (LLMMESH_PRESETS_FILE, read at start).
    presets: Presets = field(default_factory=Presets)


class Lifecycle(Protocol):
    """Optional hooks a servicer may define for resources that outlive one RPC."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...


# Topology name → "module:function" building the servicer from ServiceDeps.
IMPLEMENTATIONS: dict[str, str] = {
    "inference": "llmmesh.inference.servicer:build",
    "tooluse": "llmmesh.tooluse.servicer:build",
    "planexecute": "llmmesh.planexecute.servicer:build",
    "judge": "llmmesh.judge.servicer:build",
    "jury": "llmmesh.jury.servicer:build",
    "reflection": "llmmesh.reflection.servicer:build",
    "collaboration": "llmmesh.collaboration.servicer:build",
    "compare": "llmmesh.compare.servicer:build",
    "runs": "llmmesh.runs.servicer:build",
}


def generated_module(spec: ServiceSpec) -> Any:
    package = spec.grpc_service.rsplit(".", 1)[0]  # llmmesh.judge.v1
    short = package.split(".")[1]
    return importlib.import_module(f"{package}.{short}_service_pb2_grpc")


def _class_name(spec: ServiceSpec) -> str:
    return spec.grpc_service.rsplit(".", 1)[1]


def build_servicer(spec: ServiceSpec, deps: ServiceDeps) -> Any:
    target = IMPLEMENTATIONS.get(spec.name)
    if target is None:
        return getattr(generated_module(spec), f"{_class_name(spec)}Servicer")()
    module, _, func = target.partition(":")
    build: Callable[[ServiceDeps], Any] = getattr(importlib.import_module(module), func)
    return build(deps)


def add_to_server(spec: ServiceSpec, servicer: Any, server: grpc.aio.Server | HandlerTable) -> None:
    """Register `servicer`'s methods with a gRPC server, or with the table of in-process calls."""
    getattr(generated_module(spec), f"add_{_class_name(spec)}Servicer_to_server")(servicer, server)
