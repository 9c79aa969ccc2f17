"""What one Envoy bootstrap is rendered from: service endpoints, model backends, plain-HTTP routes,
ports and TLS, checked for consistency when built (render.py turns them into the config)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from llmmesh.common.backends import HEALTH_PATHS, api_path, parse_backend
from llmmesh.common.backends import Protocol as BackendProtocol
from llmmesh.env_values import web_origin
from llmmesh.settings import ServiceTlsSettings
from llmmesh.topology import envoy_parts
from llmmesh.topology.description import (
    ADMIN_PORT,
    EGRESS_PORT,
    INGRESS_INFRA_HOST,
    INGRESS_PORT,
    SERVICES,
    HttpComponent,
    ServiceSpec,
    Shape,
)
from llmmesh.topology.envoy_parts import Endpoint

# Same rule as llmmesh.common.backends: names travel in a header and in cluster names.
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


@dataclass(frozen=True)
class Backend:
    name: str
    host: str
    port: int
    protocol: BackendProtocol = BackendProtocol.OLLAMA
    # The URL's path: the backend's API base (its health check path sits under it).
    base_path: str = ""
    # https:// — the egress originates TLS (SNI and certificate names checked against `host`),
    # verifying with `ca_file` when set, else the system CA bundle.
    tls: bool = False
    ca_file: str = ""
    # The backend needs an API key: Envoy, which never holds it, checks only that the port answers.
    keyed: bool = False

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"backend name {self.name!r} must match {_NAME.pattern}")

    @property
    def health_path(self) -> str:
        return api_path(self.protocol, self.base_path, HEALTH_PATHS[self.protocol])

    @classmethod
    def parse(cls, spec: str) -> Backend:
        """The inference service's own syntax (llmmesh.common.backends), parsed by its parser so both
        sides derive the same name (the x-llmmesh-backend value). Credentials stay where the spec
        points: rendering never reads them."""
        cfg = parse_backend(spec)
        return cls(cfg.name, cfg.host, cfg.port, cfg.protocol, cfg.base_path, cfg.tls, cfg.ca_file, cfg.keyed)


@dataclass(frozen=True)
class PlainHttpRoute:
    """A non-gRPC route on the ingress (OpenAI front door, playground page).

    The transcoder is switched off on it: with `reject_unknown_method` it would 404 every path that
    is not a transcoded method. Its upstream speaks HTTP/1.1 and gets cluster `http_<name>`, or
    `http_<cluster>` when set: routes naming the same cluster share it (one process, several
    prefixes). A `health_path` gives that cluster an active HTTP health check.
    """

    name: str
    prefix: str
    endpoints: tuple[Endpoint, ...]
    cluster: str = ""
    health_path: str = ""
    # Match `prefix` as the whole path, not as a prefix of it.
    exact: bool = False

    def __post_init__(self) -> None:
        if (not _NAME.match(self.name) or not self.prefix.startswith("/") or not self.endpoints
                or (self.cluster and not _NAME.match(self.cluster))
                or (self.health_path and not self.health_path.startswith("/"))):
            raise ValueError(f"invalid plain route {self!r}")

    @property
    def cluster_name(self) -> str:
        return f"http_{self.cluster or self.name}"


def component_routes(component: HttpComponent, endpoints: Sequence[Endpoint]) -> tuple[PlainHttpRoute, ...]:
    """The ingress routes of a plain-HTTP component: one per prefix and one per exact path, all on
    its one cluster."""
    matches = [(prefix, False) for prefix in component.prefixes] + [(path, True) for path in component.paths]
    return tuple(
        PlainHttpRoute(f"{component.name}-{path.strip('/').replace('/', '-') or 'root'}", path,
                       tuple(endpoints), cluster=component.name, health_path=component.health_path, exact=exact)
        for path, exact in matches
    )


@dataclass(frozen=True)
class IngressTls:
    """TLS on the ingress listener (paths as Envoy sees them). The listener then serves TLS only."""

    cert_file: str
    key_file: str


@dataclass(frozen=True)
class EnvoyTracing:
    """Envoy's OpenTelemetry tracer: where it exports (OTLP/gRPC) and how much it samples. The
    ingress and the egress report as `<service_name>-ingress` and `<service_name>-egress`."""

    collector: Endpoint
    service_name: str = "llmmesh"
    sampling_percent: float = 100.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> EnvoyTracing | None:
        """From the same OTEL_* variables the Python processes read; None when tracing is off."""
        if env.get("OTEL_SDK_DISABLED", "").lower() == "true" or env.get("OTEL_TRACES_EXPORTER") == "none":
            return None
        url = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        if not url:
            return None
        parsed = urlsplit(url if "//" in url else f"http://{url}")
        if not parsed.hostname:
            raise ValueError(f"OTLP endpoint {url!r} has no host")
        sampler = env.get("OTEL_TRACES_SAMPLER", "parentbased_always_on")
        percent = 100.0
        if sampler.endswith("always_off"):
            percent = 0.0
        elif sampler.endswith("traceidratio"):
            percent = 100.0 * min(1.0, max(0.0, float(env.get("OTEL_TRACES_SAMPLER_ARG") or 1.0)))
        name = env.get("OTEL_SERVICE_NAME") or "llmmesh"
        return cls((parsed.hostname, parsed.port or 4317), name, percent)


@dataclass(frozen=True)
class RenderParams:
    shape: Shape
    # Where Envoy reads the descriptor set (a path inside the container for compose).
    descriptor_path: str
    # Service short name -> replicas; every topology service must be present.
    service_endpoints: Mapping[str, tuple[Endpoint, ...]]
    backends: tuple[Backend, ...] = ()
    bind_address: str = "127.0.0.1"
    ingress_port: int = INGRESS_PORT
    admin_port: int = ADMIN_PORT
    egress_port: int = EGRESS_PORT
    service_hc_interval_s: float = 1.0
    backend_hc_interval_s: float = 1.0
    # Longest silence tolerated on a stream (a model loading before its first token).
    stream_idle_timeout_s: float = 600.0
    egress_max_requests: int = 256
    egress_max_pending_requests: int = 128
    plain_routes: tuple[PlainHttpRoute, ...] = ()
    access_log: bool = True
    # The llmmesh services to route; health and reflection always go to `inference`.
    services: tuple[ServiceSpec, ...] = SERVICES
    ingress_tls: IngressTls | None = None
    # Mutual TLS from Envoy to every service cluster (`svc_*`, and the gateway's `http_*`), health
    # checks included: services are verified against `ca_file`, Envoy presents `cert_file`.
    upstream_tls: ServiceTlsSettings | None = None
    # Browser origins (`scheme://host[:port]`) that may call the ingress cross-origin; empty: none.
    cors_origins: tuple[str, ...] = ()
    # Envoy's OpenTelemetry tracer on both listeners; None: no tracing.
    tracing: EnvoyTracing | None = None
    # The mesh-internal gRPC listener (ingress.internal_listener); None: not rendered.
    internal_port: int | None = None

    def __post_init__(self) -> None:
        if INGRESS_INFRA_HOST not in {s.name for s in self.services}:
            raise ValueError("the inference service must be routed: it answers health and reflection")
        missing = [s.name for s in self.services if not self.service_endpoints.get(s.name)]
        if missing:
            raise ValueError(f"no endpoints for services: {', '.join(missing)}")
        names = [b.name for b in self.backends]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate backend names: {names}")
        ports = (self.ingress_port, self.admin_port, self.egress_port,
                 *(() if self.internal_port is None else (self.internal_port,)))
        if len(set(ports)) != len(ports):
            raise ValueError(f"ingress, admin, egress and internal ports must differ: {ports}")
        for origin in self.cors_origins:
            if web_origin(origin) != origin:
                raise ValueError(f"CORS origin {origin!r} must be written as browsers send it: {web_origin(origin)!r}")
        shared: dict[str, tuple[tuple[Endpoint, ...], str]] = {}
        for r in self.plain_routes:
            if shared.setdefault(r.cluster_name, (r.endpoints, r.health_path)) != (r.endpoints, r.health_path):
                raise ValueError(f"plain routes on cluster {r.cluster_name} disagree on endpoints or health path")


def listener_tracing(params: RenderParams, listener: str) -> dict:
    """A listener's connection-manager `tracing` settings; none when tracing is off."""
    t = params.tracing
    return {} if t is None else envoy_parts.tracing(f"{t.service_name}-{listener}", t.sampling_percent)
