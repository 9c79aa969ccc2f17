"""The mesh topology: which services exist, where they listen in each deployment shape.

Everything that needs to know the shape of the mesh (Envoy configs, compose, Kubernetes manifests,
the process launcher) derives it from here; nobody keeps a second copy by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Shape(StrEnum):
    # One process hosts every service on one port.
    MONOLITH = "monolith"
    # One process (or container) per service, each on its own port.
    MICROSERVICES = "microservices"


@dataclass(frozen=True)
class ServiceSpec:
    # Short name: the process/cluster/container name and the `--services` token.
    name: str
    # Fully qualified gRPC service name; also its health-check service name.
    grpc_service: str
    # Port the service listens on in the microservices shape.
    port: int
    # Prometheus port in the microservices shape.
    metrics_port: int
    # REST prefix served through transcoding, for docs and route checks.
    rest_prefix: str
    # Methods without side effects, safe to send twice: the ingress retries them even when a replica
    # died with the call in flight. The SDK's table (llmmesh_client.methods) agrees; a test holds both.
    idempotent_methods: tuple[str, ...] = ()


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("inference", "llmmesh.inference.v1.InferenceService", 50051, 9451, "/api/v1/inference",
                ("Embed", "ListModels", "ListBackends")),
    ServiceSpec("judge", "llmmesh.judge.v1.JudgeService", 50052, 9452, "/api/v1/judge", ("ListCriteria",)),
    ServiceSpec("jury", "llmmesh.jury.v1.JuryService", 50053, 9453, "/api/v1/jury"),
    ServiceSpec("tooluse", "llmmesh.tooluse.v1.ToolUseService", 50054, 9454, "/api/v1/tool-use", ("ListTools",)),
    ServiceSpec("planexecute", "llmmesh.planexecute.v1.PlanExecuteService", 50055, 9455, "/api/v1/plan-execute"),
    ServiceSpec("reflection", "llmmesh.reflection.v1.ReflectionService", 50056, 9456, "/api/v1/reflection"),
    ServiceSpec(
        "collaboration", "llmmesh.collaboration.v1.CollaborationService", 50057, 9457, "/api/v1/collaborate"
    ),
    ServiceSpec("compare", "llmmesh.compare.v1.CompareService", 50058, 9458, "/api/v1/compare"),
    # The run store's reader (pattern services write it); any valid key may call it (its own runs).
    ServiceSpec("runs", "llmmesh.runs.v1.RunsService", 50059, 9459, "/api/v1/runs", ("GetRun", "ListRuns")),
)
SERVICES_BY_NAME = {s.name: s for s in SERVICES}
# Services any valid API key may call, whatever its scopes: they show a caller its own data only.
ANY_KEY_SERVICES = frozenset({"runs"})


@dataclass(frozen=True)
class HttpComponent:
    """A plain-HTTP process behind the ingress, not a gRPC service (so nothing iterating SERVICES
    sees it). It runs as its own process in both shapes and serves `health_path` and Prometheus
    `metrics_path` on its own port; only `prefixes` are routed through the ingress."""

    # Process/container name; its ingress cluster is `http_<name>`.
    name: str
    port: int
    # Ingress path prefixes routed to it, with the gRPC-JSON transcoder off.
    prefixes: tuple[str, ...]
    health_path: str = "/healthz"
    metrics_path: str = "/metrics"
    # Ingress paths routed to it only as they are (no prefix match), with the transcoder off.
    paths: tuple[str, ...] = ()


# Ollama's API paths the gateway answers. Exact paths: /api/v1/... is the transcoder's REST API.
OLLAMA_PATHS = ("/api/chat", "/api/generate", "/api/embed", "/api/embeddings", "/api/tags", "/api/ps", "/api/show",
                "/api/version", "/api/pull", "/api/push", "/api/create", "/api/copy", "/api/delete")
# Ollama's blob uploads (`ollama create`), the digest in the path.
OLLAMA_BLOBS_PREFIX = "/api/blobs/"
MCP_PATH = "/mcp"
# The OpenAI-compatible front door (/v1/...), the Ollama-compatible one, the patterns as an MCP
# server and the browser playground, over the mesh's gRPC contracts.
GATEWAY = HttpComponent("gateway", 8090, ("/v1/", "/playground", OLLAMA_BLOBS_PREFIX),
                        paths=(*OLLAMA_PATHS, MCP_PATH))
HTTP_COMPONENTS: tuple[HttpComponent, ...] = (GATEWAY,)

# The monolith hosts every service on the inference service's ports.
MONOLITH_PORT = 50051
MONOLITH_METRICS_PORT = 9451

INGRESS_PORT = 8080
# Envoy's mesh-internal gRPC listener: the ingress's gRPC routes without its TLS, for components
# inside the mesh (the gateway's MCP server runs the patterns through it). Never published.
INTERNAL_PORT = 8081
ADMIN_PORT = 9901
EGRESS_PORT = 11500
OLLAMA_PORT = 11434

# The service whose process answers health and reflection on the ingress; it describes the whole
# mesh API through reflection, whichever services it hosts itself.
INGRESS_INFRA_HOST = "inference"

# gRPC services that are not llmmesh's own but are reachable through the ingress.
HEALTH_SERVICE = "grpc.health.v1.Health"
REFLECTION_SERVICES = ("grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection")

# Set by the ingress on every request it forwards (overwriting whatever the client sent): a call
# carrying it came through the public front door, where health and reflection need a key too.
# On a service's own port (probes, Envoy's health checks) they stay open.
INGRESS_HEADER = "x-llmmesh-ingress"
# Names the caller a mesh service identity acts for (see llmmesh.framework.auth); the ingress
# strips it from client requests.
ON_BEHALF_OF_HEADER = "x-llmmesh-on-behalf-of"
# A pattern run's id in the run store (RunsService), sent back with every run: a response header,
# or a trailer when the run failed.
RUN_ID_HEADER = "x-llmmesh-run-id"


def service(name: str) -> ServiceSpec:
    try:
        return SERVICES_BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown service {name!r}; known: {', '.join(SERVICES_BY_NAME)}") from None


def parse_services(spec: str) -> tuple[ServiceSpec, ...]:
    """`all`, or a comma-separated list of service names, in topology order."""
    if spec.strip() in ("", "all"):
        return SERVICES
    wanted = {service(tok.strip()).name for tok in spec.split(",") if tok.strip()}
    return tuple(s for s in SERVICES if s.name in wanted)
