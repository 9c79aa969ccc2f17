"""Render parameters for the two places a mesh runs: processes on loopback (laptop, tests, the
launcher) and containers named by compose service (compose, Kubernetes)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from llmmesh.topology.description import (
    ADMIN_PORT,
    EGRESS_PORT,
    GATEWAY,
    INGRESS_PORT,
    MONOLITH_PORT,
    OLLAMA_PORT,
    SERVICES,
    Shape,
)
from llmmesh.topology.envoy_parts import Endpoint
from llmmesh.topology.params import Backend, RenderParams, component_routes

REPO_ROOT = Path(__file__).resolve().parents[3]
LOCAL_DESCRIPTOR = REPO_ROOT / "envoy" / "llmmesh.pb"
# The official Envoy image gets the repo's envoy/ directory mounted here.
CONTAINER_DESCRIPTOR = "/etc/envoy/llmmesh.pb"
COMPOSE_MONOLITH_HOST = "llmmesh"
# Backends of the compose examples: containers named like the backend, Ollama API on 11434.
COMPOSE_BACKENDS = (
    Backend("ollama1", "ollama1", OLLAMA_PORT),
    Backend("ollama2", "ollama2", OLLAMA_PORT),
)


def service_endpoints(
    shape: Shape,
    host: str = "127.0.0.1",
    monolith_port: int = MONOLITH_PORT,
    replicas: Mapping[str, Sequence[Endpoint]] | None = None,
) -> dict[str, tuple[Endpoint, ...]]:
    """Endpoints per service: the one monolith address, or each service's own port on `host`.

    `replicas` overrides the endpoints of individual services (microservices with N replicas).
    """
    if shape is Shape.MONOLITH:
        out = {s.name: ((host, monolith_port),) for s in SERVICES}
    else:
        out = {s.name: ((host, s.port),) for s in SERVICES}
    for name, eps in (replicas or {}).items():
        if name not in out:
            raise ValueError(f"replicas for unknown service {name!r}")
        out[name] = tuple(eps)
    return out


def compose_service_endpoints(
    shape: Shape, monolith_host: str = COMPOSE_MONOLITH_HOST
) -> dict[str, tuple[Endpoint, ...]]:
    """Compose/k8s: the monolith container, or one container (DNS name) per service name."""
    if shape is Shape.MONOLITH:
        return {s.name: ((monolith_host, MONOLITH_PORT),) for s in SERVICES}
    return {s.name: ((s.name, s.port),) for s in SERVICES}


def local_params(
    shape: Shape,
    backends: Sequence[Backend] = (),
    *,
    services_host: str = "127.0.0.1",
    monolith_port: int = MONOLITH_PORT,
    replicas: Mapping[str, Sequence[Endpoint]] | None = None,
    descriptor_path: str | Path = LOCAL_DESCRIPTOR,
    ingress_port: int = INGRESS_PORT,
    admin_port: int = ADMIN_PORT,
    egress_port: int = EGRESS_PORT,
    gateway_port: int | None = GATEWAY.port,
) -> RenderParams:
    """Laptop/test use: everything on loopback. Tune the rest with `dataclasses.replace`.

    The gateway (OpenAI front door, playground) is routed at `services_host:gateway_port`; None
    leaves it out."""
    gateway = () if gateway_port is None else component_routes(GATEWAY, ((services_host, gateway_port),))
    return RenderParams(
        shape=shape,
        descriptor_path=str(descriptor_path),
        service_endpoints=service_endpoints(shape, services_host, monolith_port, replicas),
        backends=tuple(backends),
        bind_address="127.0.0.1",
        ingress_port=ingress_port,
        admin_port=admin_port,
        egress_port=egress_port,
        plain_routes=gateway,
    )


def compose_params(
    shape: Shape,
    backends: Sequence[Backend] = COMPOSE_BACKENDS,
    *,
    monolith_host: str = COMPOSE_MONOLITH_HOST,
    descriptor_path: str = CONTAINER_DESCRIPTOR,
) -> RenderParams:
    """Containers: hostnames are compose service names, Envoy listens on all interfaces. The
    gateway is its own container (`gateway`) in both shapes."""
    return RenderParams(
        shape=shape,
        descriptor_path=descriptor_path,
        service_endpoints=compose_service_endpoints(shape, monolith_host),
        backends=tuple(backends),
        bind_address="0.0.0.0",
        plain_routes=component_routes(GATEWAY, ((GATEWAY.name, GATEWAY.port),)),
    )
