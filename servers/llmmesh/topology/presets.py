"""Render parameters for the two places a mesh runs: processes on loopback (laptop, tests, the
launcher) and containers named by compose service (compose, Kubernetes)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from enum import StrEnum
from pathlib import Path

from llmmesh.settings import ServiceTlsSettings
from llmmesh.topology.description import (
    ADMIN_PORT,
    EGRESS_PORT,
    GATEWAY,
    INGRESS_PORT,
    INTERNAL_PORT,
    MONOLITH_PORT,
    OLLAMA_PORT,
    SERVICES,
    Shape,
)
from llmmesh.topology.envoy_parts import Endpoint
from llmmesh.topology.params import Backend, EnvoyTracing, IngressTls, RenderParams, component_routes

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


class Security(StrEnum):
    """What a container deployment switches on (compose.secure.yaml, compose.mtls.yaml;
    deploy/k8s-secure, deploy/k8s-mtls). API keys need no Envoy change; TLS does."""

    # Plaintext everywhere (the default compose.yaml and deploy/k8s).
    NONE = "none"
    # API keys, the shared service key, and TLS on the ingress.
    TLS = "tls"
    # All of TLS, plus mutual TLS between Envoy and the services and among the services.
    MTLS = "mtls"


# Where compose (`secrets:`) and Kubernetes (Secret volumes) put the secrets in every container:
# one directory per Secret, with the file names of Kubernetes' TLS Secrets (cert-manager's too).
SECRETS_DIR = "/run/secrets/llmmesh"
AUTH_DIR = f"{SECRETS_DIR}/auth"
INGRESS_TLS_DIR = f"{SECRETS_DIR}/ingress-tls"
MESH_TLS_DIR = f"{SECRETS_DIR}/mesh-tls"
CONTAINER_API_KEYS = f"{AUTH_DIR}/api-keys.json"
CONTAINER_SERVICE_KEY = f"{AUTH_DIR}/service.key"
CONTAINER_INGRESS_TLS = IngressTls(f"{INGRESS_TLS_DIR}/tls.crt", f"{INGRESS_TLS_DIR}/tls.key")
CONTAINER_MESH_TLS = ServiceTlsSettings(f"{MESH_TLS_DIR}/tls.crt", f"{MESH_TLS_DIR}/tls.key", f"{MESH_TLS_DIR}/ca.crt")
# The secured compose reaches the inference service directly (the ingress then speaks TLS only):
# the monolith and the `inference` containers both answer to this name on the mesh network.
COMPOSE_INFERENCE_ALIAS = "llmmesh-inference"
# Envoy's name on the mesh network (compose alias, Kubernetes Service): the gateway dials its
# internal listener by it.
COMPOSE_ENVOY_HOST = "envoy"
# Compose and Kubernetes run Jaeger all-in-one, receiving OTLP/gRPC; Envoy traces to it as the
# services do (OTEL_EXPORTER_OTLP_ENDPOINT=http://jaeger:4317).
COMPOSE_TRACING = EnvoyTracing(("jaeger", 4317))


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
    internal_port: int | None = None,
) -> RenderParams:
    """Laptop/test use: everything on loopback. Tune the rest with `dataclasses.replace`.

    The gateway (OpenAI front door, playground) is routed at `services_host:gateway_port`; None
    leaves it out. `internal_port` adds the mesh-internal gRPC listener."""
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
        internal_port=internal_port,
    )


def compose_params(
    shape: Shape,
    backends: Sequence[Backend] = COMPOSE_BACKENDS,
    *,
    monolith_host: str = COMPOSE_MONOLITH_HOST,
    descriptor_path: str = CONTAINER_DESCRIPTOR,
    security: Security = Security.NONE,
) -> RenderParams:
    """Containers: hostnames are compose service names, Envoy listens on all interfaces. The
    gateway is its own container (`gateway`) in both shapes; it reaches the patterns through the
    internal listener (`envoy:8081`), whatever the ingress speaks. `security` names the certificates
    at the paths the secured compose files and Kubernetes overlays mount them."""
    params = RenderParams(
        shape=shape,
        descriptor_path=descriptor_path,
        service_endpoints=compose_service_endpoints(shape, monolith_host),
        backends=tuple(backends),
        bind_address="0.0.0.0",
        plain_routes=component_routes(GATEWAY, ((GATEWAY.name, GATEWAY.port),)),
        internal_port=INTERNAL_PORT,
        tracing=COMPOSE_TRACING,
    )
    if security is Security.NONE:
        return params
    mesh = CONTAINER_MESH_TLS if security is Security.MTLS else None
    return replace(params, ingress_tls=CONTAINER_INGRESS_TLS, upstream_tls=mesh)


def mesh_certificate_names() -> tuple[str, ...]:
    """Every name the services are dialled by in containers (compose and Kubernetes alike), which
    the mesh certificate must carry under mutual TLS: the service names (pattern → inference, and
    Envoy), the monolith, the gateway, the secured compose's inference alias, Envoy's internal
    listener (gateway → patterns), and the loopback the healthchecks and the monolith's own calls use."""
    names = (*(s.name for s in SERVICES), COMPOSE_MONOLITH_HOST, GATEWAY.name, COMPOSE_INFERENCE_ALIAS,
             COMPOSE_ENVOY_HOST, "localhost", "127.0.0.1")
    return tuple(dict.fromkeys(names))
