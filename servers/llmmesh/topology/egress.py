"""The egress: plain HTTP from the inference service to the model backends. Every request names its
backend in `x-llmmesh-backend` (the inference service routes and fails over); the egress sends it to
that backend's own cluster, where active health checks, ejection and circuit breaking apply.

An https:// backend's cluster originates TLS (SNI, the certificate checked against the system CA
bundle or the backend's `ca_file`, and its name against the host), and requests to it carry the
backend's host in Host, as a hosted API or a virtual-hosting proxy needs. The inference service
still speaks plain HTTP to the egress, its credentials in the request's headers.

Health checks: an HTTP GET of the protocol's cheap listing under the backend's base path. A
backend that needs an API key gets a TCP check (connect, and the TLS handshake for https://)
instead: Envoy's check could carry the key only as a header written into this config, which would
put a secret in a file that is rendered, committed and mounted. The inference service's inventory
probe, which carries the key, marks such a backend down when its API refuses or fails.
"""

from __future__ import annotations

from llmmesh.common.backends import BACKEND_HEADER
from llmmesh.topology import envoy_parts as parts
from llmmesh.topology.envoy_parts import duration
from llmmesh.topology.params import Backend, RenderParams, listener_tracing

# Where Debian/Ubuntu (and the envoyproxy/envoy image) keep the system's trusted CAs.
SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def egress_listener(params: RenderParams) -> dict:
    backends = {"name": "backends", "domains": ["*"], "routes": _routes(params)}
    route_config = {"name": "egress", "virtual_hosts": [backends]}
    hcm = parts.connection_manager("egress", params.stream_idle_timeout_s, params.access_log, route_config,
                                   [parts.router_filter()],
                                   # A backend that dies mid-stream: close our side at once. The default
                                   # 1 s flush delay held every mid-stream failover back by a second.
                                   delayed_close_timeout="0s", **listener_tracing(params, "egress"))
    return parts.listener("egress", params.bind_address, params.egress_port, hcm)


def egress_clusters(params: RenderParams) -> list[dict]:
    return [_backend_cluster(params, b) for b in params.backends]


def _routes(params: RenderParams) -> list[dict]:
    routes = [_pinned_route(params, b) for b in params.backends]
    # A name Envoy does not know, or none, is config drift between the inference service's backend
    # list and this file: fail loudly rather than guess a backend.
    routes.append(
        {
            "name": "unknown_backend",
            "match": {"prefix": "/"},
            "direct_response": {"status": 400, "body": {"inline_string": f"unknown or missing {BACKEND_HEADER}\n"}},
        }
    )
    return routes


def _pinned_route(params: RenderParams, backend: Backend) -> dict:
    cluster = _cluster_name(backend)
    # No retry_policy on purpose: the inference service owns retries and failover between
    # backends (it knows which model lives where and whether tokens were already emitted).
    route: dict = {"cluster": cluster, "timeout": "0s", "idle_timeout": duration(params.stream_idle_timeout_s)}
    if backend.tls:
        route["host_rewrite_literal"] = _authority(backend)
    return {
        "name": cluster,
        "match": {"prefix": "/", "headers": [{"name": BACKEND_HEADER, "string_match": {"exact": backend.name}}]},
        "route": route,
        "request_headers_to_remove": [BACKEND_HEADER],
    }


def _authority(backend: Backend) -> str:
    return backend.host if backend.port == (443 if backend.tls else 80) else f"{backend.host}:{backend.port}"


def _cluster_name(backend: Backend) -> str:
    return f"backend_{backend.name}"


def _health_check(backend: Backend) -> dict:
    if backend.keyed:
        return {"tcp_health_check": {}}
    http: dict = {"path": backend.health_path}
    if backend.tls:
        http["host"] = _authority(backend)
    return {"http_health_check": http}


def _backend_cluster(params: RenderParams, backend: Backend) -> dict:
    tls = {}
    if backend.tls:
        tls["transport_socket"] = parts.upstream_tls(backend.host, backend.ca_file or SYSTEM_CA_BUNDLE)
    return parts.cluster(
        _cluster_name(backend),
        [(backend.host, backend.port)],
        # Never send to an unhealthy backend (the default 50% panic threshold would): a pinned
        # request fails fast with 503 and the inference service fails over.
        common_lb_config={"healthy_panic_threshold": {"value": 0}},
        health_checks=[parts.health_check(params.backend_hc_interval_s, _health_check(backend), timeout_s=2.0)],
        outlier_detection={
            "consecutive_5xx": 3,
            "consecutive_gateway_failure": 3,
            "enforcing_consecutive_gateway_failure": 100,
            "interval": "1s",
            "base_ejection_time": "5s",
            # A backend's cluster has a single host: it must be ejectable.
            "max_ejection_percent": 100,
        },
        typed_extension_protocol_options=parts.http1_upstream(parts.BACKEND_IDLE_TIMEOUT),
        circuit_breakers={
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
        **tls,
    )
