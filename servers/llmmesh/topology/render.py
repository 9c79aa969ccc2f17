"""Render one Envoy bootstrap (ingress + egress + admin) from the topology description.

Both deployment shapes come from the same code: only the service endpoints differ. The ingress
carries gRPC, and REST/SSE through gRPC-JSON transcoding, to one cluster per service; the egress
balances plain HTTP toward Ollama / OpenAI-compatible backends with health checks and ejection.
Plain-HTTP routes (the gateway's OpenAI API under /v1/ and the playground) bypass the transcoder.

    llmmesh-envoy --shape monolith --backend a=http://127.0.0.1:11434 --out envoy.yaml
    llmmesh-envoy --write-compose-examples     # refresh envoy/compose-*.yaml
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from llmmesh.common.backends import Protocol as BackendProtocol
from llmmesh.common.backends import parse_backend
from llmmesh.topology import envoy_parts as parts
from llmmesh.topology.description import (
    ADMIN_PORT,
    EGRESS_PORT,
    GATEWAY,
    HEALTH_SERVICE,
    INGRESS_HEADER,
    INGRESS_INFRA_HOST,
    INGRESS_PORT,
    MONOLITH_PORT,
    OLLAMA_PORT,
    ON_BEHALF_OF_HEADER,
    REFLECTION_SERVICES,
    SERVICES,
    HttpComponent,
    ServiceSpec,
    Shape,
)
from llmmesh.topology.envoy_parts import Endpoint, duration

REPO_ROOT = Path(__file__).resolve().parents[3]
LOCAL_DESCRIPTOR = REPO_ROOT / "envoy" / "llmmesh.pb"
# The official Envoy image gets the repo's envoy/ directory mounted here.
CONTAINER_DESCRIPTOR = "/etc/envoy/llmmesh.pb"
COMPOSE_MONOLITH_HOST = "llmmesh"

TRANSCODER = "envoy.filters.http.grpc_json_transcoder"
TRANSCODER_TYPE = "type.googleapis.com/envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder"
BACKEND_HEADER = "x-llmmesh-backend"
# Egress response header naming the backend host that served the request (pool routing).
UPSTREAM_HOST_HEADER = "x-llmmesh-upstream-host"
# gRPC services answered by the inference process, whichever shape: it advertises the whole mesh.
INFRA_SERVICES = (HEALTH_SERVICE, *REFLECTION_SERVICES)
# Same rule as llmmesh.common.backends: names travel in a header and in cluster names.
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


# Health-check paths: cheap endpoints that answer only when the server is up and serving its API.
HEALTH_PATHS = {BackendProtocol.OLLAMA: "/api/tags", BackendProtocol.OPENAI: "/v1/models"}


@dataclass(frozen=True)
class Backend:
    name: str
    host: str
    port: int
    protocol: BackendProtocol = BackendProtocol.OLLAMA

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"backend name {self.name!r} must match {_NAME.pattern}")

    @classmethod
    def parse(cls, spec: str) -> Backend:
        """The inference service's own syntax, `[name=]http://host:port[#ollama|#openai][;models=…]`,
        parsed by its parser so both sides derive the same name (the x-llmmesh-backend value)."""
        cfg = parse_backend(spec)
        if urlsplit(cfg.url).scheme != "http":
            raise ValueError(f"backend {spec!r}: the egress speaks only plain http:// to backends")
        return cls(cfg.name, cfg.host, cfg.port, cfg.protocol)


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

    def __post_init__(self) -> None:
        if (not _NAME.match(self.name) or not self.prefix.startswith("/") or not self.endpoints
                or (self.cluster and not _NAME.match(self.cluster))
                or (self.health_path and not self.health_path.startswith("/"))):
            raise ValueError(f"invalid plain route {self!r}")

    @property
    def cluster_name(self) -> str:
        return f"http_{self.cluster or self.name}"


def component_routes(component: HttpComponent, endpoints: Sequence[Endpoint]) -> tuple[PlainHttpRoute, ...]:
    """The ingress routes of a plain-HTTP component: one per prefix, all on its one cluster."""
    return tuple(
        PlainHttpRoute(f"{component.name}-{prefix.strip('/').replace('/', '-') or 'root'}", prefix,
                       tuple(endpoints), cluster=component.name, health_path=component.health_path)
        for prefix in component.prefixes
    )


@dataclass(frozen=True)
class IngressTls:
    """TLS on the ingress listener (paths as Envoy sees them). The listener then serves TLS only."""

    cert_file: str
    key_file: str


@dataclass(frozen=True)
class UpstreamTls:
    """Mutual TLS from Envoy to every service cluster (`svc_*`, and the gateway's `http_*`):
    services are verified against `ca_file`, Envoy presents `cert_file`. Health checks included."""

    ca_file: str
    cert_file: str
    key_file: str


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
    upstream_tls: UpstreamTls | None = None

    def __post_init__(self) -> None:
        if INGRESS_INFRA_HOST not in {s.name for s in self.services}:
            raise ValueError("the inference service must be routed: it answers health and reflection")
        missing = [s.name for s in self.services if not self.service_endpoints.get(s.name)]
        if missing:
            raise ValueError(f"no endpoints for services: {', '.join(missing)}")
        names = [b.name for b in self.backends]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate backend names: {names}")
        ports = (self.ingress_port, self.admin_port, self.egress_port)
        if len(set(ports)) != len(ports):
            raise ValueError(f"ingress, admin and egress ports must differ: {ports}")
        shared: dict[str, tuple[tuple[Endpoint, ...], str]] = {}
        for r in self.plain_routes:
            if shared.setdefault(r.cluster_name, (r.endpoints, r.health_path)) != (r.endpoints, r.health_path):
                raise ValueError(f"plain routes on cluster {r.cluster_name} disagree on endpoints or health path")


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


# Backends of the compose examples: containers named like the backend, Ollama API on 11434.
COMPOSE_BACKENDS = (
    Backend("ollama1", "ollama1", OLLAMA_PORT),
    Backend("ollama2", "ollama2", OLLAMA_PORT),
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


# ---------------------------------------------------------------------------------------------
# Bootstrap


def render(params: RenderParams) -> dict:
    """The Envoy v3 bootstrap as a plain dict."""
    listeners = [_ingress_listener(params)]
    clusters = [_service_cluster(params, s) for s in params.services]
    # Routes sharing a cluster (validated to agree) render it once.
    plain: dict[str, PlainHttpRoute] = {}
    for r in params.plain_routes:
        plain.setdefault(r.cluster_name, r)
    clusters += [_plain_cluster(params, r) for r in plain.values()]
    if params.backends:
        listeners.append(_egress_listener(params))
        clusters += [_backend_cluster(params, f"backend_{b.name}", [b]) for b in params.backends]
        clusters.append(_backend_cluster(params, "backends_pool", params.backends))
    return {
        "node": {"id": f"llmmesh-{params.shape}", "cluster": "llmmesh"},
        "admin": {"address": parts.socket_address(params.bind_address, params.admin_port)},
        "static_resources": {"listeners": listeners, "clusters": clusters},
        # An edge proxy caps downstream connections (Envoy's edge best practice).
        "overload_manager": {
            "resource_monitors": [
                {
                    "name": "envoy.resource_monitors.global_downstream_max_connections",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.resource_monitors."
                        "downstream_connections.v3.DownstreamConnectionsConfig",
                        "max_active_downstream_connections": 10000,
                    },
                }
            ]
        },
    }


class _Dumper(yaml.SafeDumper):
    # Shared sub-dicts (the access-log format) are written out in full, never as &anchors.
    def ignore_aliases(self, data: object) -> bool:
        return True


def render_yaml(params: RenderParams, header: str = "") -> str:
    body = yaml.dump(render(params), Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=110)
    return header + body


# ---------------------------------------------------------------------------------------------
# Ingress


def _ingress_listener(params: RenderParams) -> dict:
    hcm = {
        "@type": parts.HCM,
        "stat_prefix": "ingress",
        # AUTO: HTTP/1.1 for REST and SSE, h2c (prior knowledge) for gRPC, on one port.
        "codec_type": "AUTO",
        "http2_protocol_options": dict(parts.HTTP2_WINDOWS),
        "use_remote_address": True,
        "normalize_path": True,
        "merge_slashes": True,
        "stream_idle_timeout": duration(params.stream_idle_timeout_s),
        "access_log": parts.access_log(params.access_log),
        "local_reply_config": parts.json_local_replies(),
        "route_config": {
            "name": "ingress",
            "virtual_hosts": [
                {
                    "name": "llmmesh",
                    "domains": ["*"],
                    "routes": _ingress_routes(params),
                    # Services tell front-door calls (health and reflection need a key there) from
                    # probes on their own port; nobody outside may claim to act for another key.
                    "request_headers_to_add": [_set_header(INGRESS_HEADER, "1")],
                    "request_headers_to_remove": [ON_BEHALF_OF_HEADER],
                }
            ],
        },
        "http_filters": [_transcoder(params), _grpc_stats(), parts.router_filter()],
    }
    tls = params.ingress_tls
    socket = parts.downstream_tls(tls.cert_file, tls.key_file) if tls is not None else None
    return parts.listener("ingress", params.bind_address, params.ingress_port, hcm, socket)


def _upstream_socket(params: RenderParams, alpn: tuple[str, ...]) -> dict:
    tls = params.upstream_tls
    if tls is None:
        return {}
    return {"transport_socket": parts.upstream_mtls(tls.ca_file, tls.cert_file, tls.key_file, alpn)}


def _grpc_stats() -> dict:
    """Per-method gRPC counters (`envoy_cluster_grpc_<service>_<method>_{success,failure,total}`) for
    native and transcoded calls alike: the Envoy-side view of grpc_server_handled_total."""
    return {
        "name": "envoy.filters.http.grpc_stats",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.grpc_stats.v3.FilterConfig",
            "stats_for_all_methods": True,
            "enable_upstream_stats": True,
        },
    }


def _transcoder(params: RenderParams) -> dict:
    return {
        "name": TRANSCODER,
        "typed_config": {
            "@type": TRANSCODER_TYPE,
            "proto_descriptor": params.descriptor_path,
            "services": [s.grpc_service for s in params.services],
            "print_options": {
                "add_whitespace": False,
                "always_print_primitive_fields": True,
                "preserve_proto_field_names": True,
                # Server streams become text/event-stream with `data: {...}\n\n` frames.
                "stream_sse_style_delimited": True,
            },
            # gRPC errors become a JSON google.rpc.Status (details need their types in the descriptor).
            "convert_grpc_status": True,
            "request_validation_options": {
                # Unknown REST paths get 404 from here instead of leaking to a gRPC upstream.
                "reject_unknown_method": True,
                "reject_unknown_query_parameters": True,
            },
        },
    }


def _ingress_routes(params: RenderParams) -> list[dict]:
    routes = [_grpc_route(params, s.grpc_service, f"svc_{s.name}") for s in params.services]
    routes += [_grpc_route(params, name, f"svc_{INGRESS_INFRA_HOST}") for name in INFRA_SERVICES]
    routes += [_plain_route(params, r) for r in params.plain_routes]
    # REST paths never get here (the transcoder 404s unknown ones first); gRPC calls to a service
    # outside the mesh do, and see UNIMPLEMENTED.
    routes.append(
        {
            "name": "not_found",
            "match": {"prefix": "/"},
            "direct_response": {"status": 404, "body": {"inline_string": "no route"}},
        }
    )
    return routes


def _grpc_route(params: RenderParams, grpc_service: str, cluster: str) -> dict:
    return {
        "name": grpc_service,
        "match": {"prefix": f"/{grpc_service}/"},
        "route": {
            "cluster": cluster,
            # Streams run as long as the model generates; silence is bounded by idle_timeout.
            "timeout": "0s",
            "idle_timeout": duration(params.stream_idle_timeout_s),
            # Honour the client's grpc-timeout (its deadline) instead of the disabled route timeout.
            "max_stream_duration": {"grpc_timeout_header_max": "0s"},
            "retry_policy": {
                # Only failures where the request certainly never reached a servicer. Not gRPC
                # UNAVAILABLE: services answer it after real work (no backend left mid-run, a
                # model's malformed output, a jury below quorum), and replaying a whole pattern run
                # would multiply its model calls. Failover between backends is the inference
                # service's job, client retries the SDK's (idempotent methods only).
                "retry_on": "connect-failure,refused-stream,reset-before-request",
                "num_retries": 2,
                "retry_host_predicate": [
                    {
                        "name": "envoy.retry_host_predicates.previous_hosts",
                        "typed_config": {
                            "@type": "type.googleapis.com/"
                            "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
                        },
                    }
                ],
                "host_selection_retry_max_attempts": 3,
                "retry_back_off": {"base_interval": "0.1s", "max_interval": "1s"},
            },
        },
    }


def _plain_route(params: RenderParams, r: PlainHttpRoute) -> dict:
    return {
        "name": f"http_{r.name}",
        "match": {"prefix": r.prefix},
        "route": {
            "cluster": r.cluster_name,
            "timeout": "0s",
            "idle_timeout": duration(params.stream_idle_timeout_s),
            # Only where the request certainly never reached the upstream: POSTs are not idempotent.
            "retry_policy": {"retry_on": "connect-failure,refused-stream", "num_retries": 2},
        },
        "typed_per_filter_config": parts.disabled_filter(TRANSCODER),
    }


def _service_cluster(params: RenderParams, spec: ServiceSpec) -> dict:
    name = f"svc_{spec.name}"
    endpoints = params.service_endpoints[spec.name]
    interval = duration(params.service_hc_interval_s)
    return {
        "name": name,
        **parts.discovery(endpoints),
        "connect_timeout": "2s",
        # Generations are long and uneven: balance on in-flight requests, not turns.
        "lb_policy": "LEAST_REQUEST",
        "typed_extension_protocol_options": parts.http2_upstream(),
        "load_assignment": parts.load_assignment(name, endpoints),
        **_upstream_socket(params, ("h2",)),
        "health_checks": [
            {
                "timeout": "1s",
                "interval": interval,
                # Default is 60 s: a cluster nobody has called yet would notice an outage late.
                "no_traffic_interval": interval,
                "unhealthy_threshold": 2,
                "healthy_threshold": 1,
                "grpc_health_check": {"service_name": spec.grpc_service},
            }
        ],
        # gRPC statuses count as their HTTP mapping (UNAVAILABLE=503, INTERNAL=500). With one host
        # (monolith) ejection just enters panic mode, which still routes to it.
        "outlier_detection": {
            "consecutive_5xx": 5,
            "consecutive_gateway_failure": 3,
            "enforcing_consecutive_gateway_failure": 100,
            "interval": "5s",
            "base_ejection_time": "10s",
            "max_ejection_percent": 50,
        },
    }


def _plain_cluster(params: RenderParams, r: PlainHttpRoute) -> dict:
    name = r.cluster_name
    cluster = {
        "name": name,
        **parts.discovery(r.endpoints),
        "connect_timeout": "2s",
        "lb_policy": "LEAST_REQUEST",
        "load_assignment": parts.load_assignment(name, r.endpoints),
        **_upstream_socket(params, ("http/1.1",)),
    }
    if r.health_path:
        interval = duration(params.service_hc_interval_s)
        cluster["health_checks"] = [
            {
                "timeout": "1s",
                "interval": interval,
                "no_traffic_interval": interval,
                "unhealthy_threshold": 2,
                "healthy_threshold": 1,
                "http_health_check": {"path": r.health_path},
            }
        ]
    return cluster


# ---------------------------------------------------------------------------------------------
# Egress


def _egress_listener(params: RenderParams) -> dict:
    hcm = {
        "@type": parts.HCM,
        "stat_prefix": "egress",
        "codec_type": "AUTO",
        "http2_protocol_options": dict(parts.HTTP2_WINDOWS),
        "stream_idle_timeout": duration(params.stream_idle_timeout_s),
        "access_log": parts.access_log(params.access_log),
        "route_config": {
            "name": "egress",
            "virtual_hosts": [
                {
                    "name": "backends",
                    "domains": ["*"],
                    "routes": _egress_routes(params),
                    # Lets the inference service attribute pool-routed tokens to a backend.
                    "response_headers_to_add": [_set_header(UPSTREAM_HOST_HEADER, "%UPSTREAM_HOST%")],
                }
            ],
        },
        "http_filters": [parts.router_filter()],
    }
    return parts.listener("egress", params.bind_address, params.egress_port, hcm)


def _egress_routes(params: RenderParams) -> list[dict]:
    routes = [
        _egress_route(params, f"backend_{b.name}", {"name": BACKEND_HEADER, "string_match": {"exact": b.name}})
        for b in params.backends
    ]
    # A pinned name Envoy does not know is config drift between the router and this file: fail loudly.
    routes.append(
        {
            "name": "unknown_backend",
            "match": {"prefix": "/", "headers": [{"name": BACKEND_HEADER, "present_match": True}]},
            "direct_response": {"status": 400, "body": {"inline_string": "unknown x-llmmesh-backend\n"}},
        }
    )
    routes.append(_egress_route(params, "backends_pool", None))
    return routes


def _egress_route(params: RenderParams, cluster: str, header_match: dict | None) -> dict:
    match: dict = {"prefix": "/"}
    if header_match:
        match["headers"] = [header_match]
    return {
        "name": cluster,
        "match": match,
        # No retry_policy on purpose: the inference service owns retries and failover between
        # backends (it knows which model lives where and whether tokens were already emitted).
        "route": {"cluster": cluster, "timeout": "0s", "idle_timeout": duration(params.stream_idle_timeout_s)},
        "request_headers_to_remove": [BACKEND_HEADER],
    }


def _backend_cluster(params: RenderParams, name: str, backends: Sequence[Backend]) -> dict:
    endpoints = [(b.host, b.port) for b in backends]
    interval = duration(params.backend_hc_interval_s)
    protocols = {b.protocol for b in backends}
    return {
        "name": name,
        **parts.discovery(endpoints),
        "connect_timeout": "2s",
        "lb_policy": "LEAST_REQUEST",
        "load_assignment": parts.load_assignment(name, endpoints),
        # Never send to an unhealthy backend (the default 50% panic threshold would): a pinned
        # request fails fast with 503 and the inference service fails over.
        "common_lb_config": {"healthy_panic_threshold": {"value": 0}},
        "health_checks": [_backend_health_check(interval, protocols)],
        "outlier_detection": {
            "consecutive_5xx": 3,
            "consecutive_gateway_failure": 3,
            "enforcing_consecutive_gateway_failure": 100,
            "interval": "1s",
            "base_ejection_time": "5s",
            # Per-backend clusters have a single host: it must be ejectable.
            "max_ejection_percent": 100,
        },
        "circuit_breakers": {
            "thresholds": [
                {
                    "priority": "DEFAULT",
                    "max_connections": params.egress_max_requests,
                    "max_requests": params.egress_max_requests,
                    "max_pending_requests": params.egress_max_pending_requests,
                    "max_retries": 0,
                }
            ]
        },
    }


def _backend_health_check(interval: str, protocols: set[BackendProtocol]) -> dict:
    # A mixed pool checks /v1/models on every host: Ollama serves it too (its OpenAI-compatible API).
    path = HEALTH_PATHS[protocols.pop()] if len(protocols) == 1 else HEALTH_PATHS[BackendProtocol.OPENAI]
    return {
        "timeout": "2s",
        "interval": interval,
        "no_traffic_interval": interval,
        "unhealthy_threshold": 2,
        "healthy_threshold": 1,
        "http_health_check": {"path": path},
    }


def _set_header(key: str, value: str) -> dict:
    return {"header": {"key": key, "value": value}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}


# ---------------------------------------------------------------------------------------------
# Committed compose examples and the CLI

EXAMPLES_DIR = REPO_ROOT / "envoy"
_REGENERATE = "llmmesh-envoy --write-compose-examples"


def compose_examples() -> dict[str, str]:
    """File name -> YAML text of the configs committed under envoy/ (a test keeps them in sync)."""
    out = {}
    for shape in Shape:
        params = compose_params(shape)
        backends = ", ".join(f"{b.name}={b.host}:{b.port} ({b.protocol})" for b in params.backends)
        header = (
            f"# Envoy bootstrap for docker compose, {shape} shape. GENERATED, do not edit by hand.\n"
            f"# Regenerate: {_REGENERATE}   (source: servers/llmmesh/topology/)\n"
            f"# Mount the repo's envoy/ directory at /etc/envoy (descriptor: {params.descriptor_path}).\n"
            f"# Backends: {backends}.\n"
        )
        out[f"compose-{shape}.yaml"] = render_yaml(params, header)
    return out


def write_compose_examples(out_dir: Path = EXAMPLES_DIR) -> list[Path]:
    written = []
    for name, text in compose_examples().items():
        path = out_dir / name
        path.write_text(text)
        written.append(path)
    return written


def _endpoint(text: str) -> Endpoint:
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def _replicas(text: str) -> tuple[str, tuple[Endpoint, ...]]:
    name, sep, eps = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected NAME=HOST:PORT[,HOST:PORT...], got {text!r}")
    return name.strip(), tuple(_endpoint(e) for e in eps.split(","))


def _backend(text: str) -> Backend:
    try:
        return Backend.parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="llmmesh-envoy", description="Render the llmmesh Envoy bootstrap.")
    p.add_argument("--shape", type=Shape, choices=list(Shape), default=Shape.MONOLITH)
    p.add_argument("--backend", type=_backend, action="append", default=[],
                   metavar="[NAME=]http://HOST:PORT[#ollama|#openai]",
                   help="egress backend, same syntax as LLMMESH_BACKENDS (repeatable)")
    p.add_argument("--compose", action="store_true",
                   help="container variant: bind 0.0.0.0, services by compose name, container descriptor path")
    p.add_argument("--ingress-port", type=int, default=INGRESS_PORT)
    p.add_argument("--admin-port", type=int, default=ADMIN_PORT)
    p.add_argument("--egress-port", type=int, default=EGRESS_PORT)
    p.add_argument("--services-host", default="127.0.0.1", help="host of the local service processes")
    p.add_argument("--monolith-port", type=int, default=MONOLITH_PORT)
    p.add_argument("--gateway-port", type=int, default=GATEWAY.port,
                   help="port of the local gateway process (OpenAI API, playground); 0 leaves it out")
    p.add_argument("--replicas", type=_replicas, action="append", default=[],
                   metavar="NAME=HOST:PORT[,HOST:PORT...]", help="endpoints of one service (repeatable)")
    p.add_argument("--descriptor", help="descriptor set path as Envoy sees it")
    p.add_argument("--hc-interval", type=float, help="health-check interval in seconds (services and backends)")
    p.add_argument("--tls-cert", help="serve the ingress over TLS with this certificate (PEM)")
    p.add_argument("--tls-key", help="private key of --tls-cert")
    p.add_argument("--mtls-ca", help="mutual TLS to the services: CA their certificates are checked against")
    p.add_argument("--mtls-cert", help="mutual TLS to the services: Envoy's client certificate")
    p.add_argument("--mtls-key", help="private key of --mtls-cert")
    p.add_argument("--out", help="output file (default: stdout)")
    p.add_argument("--write-compose-examples", action="store_true",
                   help=f"rewrite the committed compose configs under {EXAMPLES_DIR}")
    return p


def params_from_args(args: argparse.Namespace) -> RenderParams:
    if args.compose:
        params = compose_params(args.shape, args.backend or COMPOSE_BACKENDS)
        if args.replicas:
            params = replace(params, service_endpoints={**params.service_endpoints, **dict(args.replicas)})
    else:
        params = local_params(
            args.shape,
            args.backend,
            services_host=args.services_host,
            monolith_port=args.monolith_port,
            replicas=dict(args.replicas),
            gateway_port=args.gateway_port or None,
        )
    params = replace(params, ingress_port=args.ingress_port, admin_port=args.admin_port, egress_port=args.egress_port)
    if args.descriptor:
        params = replace(params, descriptor_path=args.descriptor)
    if args.hc_interval:
        params = replace(params, service_hc_interval_s=args.hc_interval, backend_hc_interval_s=args.hc_interval)
    if bool(args.tls_cert) != bool(args.tls_key):
        raise ValueError("--tls-cert and --tls-key go together")
    if args.tls_cert:
        params = replace(params, ingress_tls=IngressTls(args.tls_cert, args.tls_key))
    mtls = (args.mtls_ca, args.mtls_cert, args.mtls_key)
    if any(mtls) and not all(mtls):
        raise ValueError("--mtls-ca, --mtls-cert and --mtls-key go together")
    if all(mtls):
        params = replace(params, upstream_tls=UpstreamTls(*mtls))
    return params


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.write_compose_examples:
        for path in write_compose_examples():
            print(f"wrote {path}", file=sys.stderr)
        return 0
    try:
        text = render_yaml(params_from_args(args))
    except ValueError as e:
        parser.error(str(e))
    if args.out:
        Path(args.out).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
