"""Small builders for Envoy v3 config fragments, shared by the ingress and egress renderers.

Every function returns plain dicts/lists ready for YAML; none of them knows about the topology.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Endpoint = tuple[str, int]

HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
FILTER_CONFIG = "type.googleapis.com/envoy.config.route.v3.FilterConfig"
HTTP_PROTOCOL_OPTIONS = "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
STDOUT_LOG = "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"

# One JSON line per request, matching the services' JSON logs; x-request-id ties them together.
ACCESS_LOG_FORMAT = {
    "time": "%START_TIME%",
    "request_id": "%REQ(X-REQUEST-ID)%",
    "method": "%REQ(:METHOD)%",
    "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
    "protocol": "%PROTOCOL%",
    "status": "%RESPONSE_CODE%",
    "grpc_status": "%GRPC_STATUS_NUMBER%",
    "flags": "%RESPONSE_FLAGS%",
    "duration_ms": "%DURATION%",
    "cluster": "%UPSTREAM_CLUSTER%",
    "upstream": "%UPSTREAM_HOST%",
    "bytes_in": "%BYTES_RECEIVED%",
    "bytes_out": "%BYTES_SENT%",
}


def duration(seconds: float) -> str:
    """Envoy's protobuf Duration in YAML form ("1.5s")."""
    return f"{seconds:g}s"


def socket_address(host: str, port: int) -> dict:
    return {"socket_address": {"address": host, "port_value": port}}


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def discovery(endpoints: Sequence[Endpoint]) -> dict:
    """STATIC for IP literals; STRICT_DNS otherwise, so a name resolving to N replicas gives N hosts."""
    if all(is_ip(host) for host, _ in endpoints):
        return {"type": "STATIC"}
    # IPv4 only: `localhost` and container names must not resolve to an unreachable ::1 first.
    return {"type": "STRICT_DNS", "dns_lookup_family": "V4_ONLY"}


def load_assignment(cluster: str, endpoints: Sequence[Endpoint]) -> dict:
    lb_endpoints = [{"endpoint": {"address": socket_address(h, p)}} for h, p in endpoints]
    return {"cluster_name": cluster, "endpoints": [{"lb_endpoints": lb_endpoints}]}


def cluster(name: str, endpoints: Sequence[Endpoint], **settings: object) -> dict:
    """An upstream cluster over `endpoints`; `settings` adds its health checks, TLS, limits…"""
    return {
        "name": name,
        **discovery(endpoints),
        "connect_timeout": "2s",
        # Generations are long and uneven: balance on in-flight requests, not turns.
        "lb_policy": "LEAST_REQUEST",
        "load_assignment": load_assignment(name, endpoints),
        **settings,
    }


def health_check(interval_s: float, check: dict, timeout_s: float = 1.0) -> dict:
    """One active health check; `check` is its `grpc_health_check` or `http_health_check` entry."""
    interval = duration(interval_s)
    return {
        "timeout": duration(timeout_s),
        "interval": interval,
        # Default is 60 s: a cluster nobody has called yet would notice an outage late.
        "no_traffic_interval": interval,
        "unhealthy_threshold": 2,
        "healthy_threshold": 1,
        **check,
    }


def set_header(key: str, value: str) -> dict:
    """A header to add, replacing whatever the client sent under that name."""
    return {"header": {"key": key, "value": value}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}


# Envoy's default HTTP/2 windows are 256 MiB: a slow reader's answer would pile up inside Envoy
# instead of pushing back on the service and, through it, on the model backend. Small windows keep
# backpressure end to end (tests/chaos/test_slow_client.py).
HTTP2_WINDOWS = {"initial_stream_window_size": 65536, "initial_connection_window_size": 1048576}


# Backends close idle keep-alive connections after a few seconds (llama.cpp's cpp-httplib and
# uvicorn-served vLLM after 5 s). A request Envoy sends on such a connection as it closes is lost
# (503, flag UC: "connection termination"), and a lost inventory probe marks the backend down. Envoy
# closes its idle backend connections first instead.
BACKEND_IDLE_TIMEOUT = "3s"


def http1_upstream(idle_timeout: str) -> dict:
    """HTTP/1.1 toward a backend, closing connections idle for `idle_timeout`."""
    return {
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": HTTP_PROTOCOL_OPTIONS,
            "common_http_protocol_options": {"idle_timeout": idle_timeout},
            "explicit_http_config": {"http_protocol_options": {}},
        }
    }


def http2_upstream() -> dict:
    # Without this Envoy speaks HTTP/1.1 upstream and gRPC fails.
    return {
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": HTTP_PROTOCOL_OPTIONS,
            "explicit_http_config": {"http2_protocol_options": dict(HTTP2_WINDOWS)},
        }
    }


def access_log(enabled: bool) -> list[dict]:
    if not enabled:
        return []
    return [
        {
            "name": "envoy.access_loggers.stdout",
            "typed_config": {"@type": STDOUT_LOG, "log_format": {"json_format": ACCESS_LOG_FORMAT}},
        }
    ]


def router_filter() -> dict:
    return {"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER}}


CORS = "envoy.filters.http.cors"
CORS_FILTER = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"
CORS_POLICY = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy"


def cors_filter() -> dict:
    """The CORS filter; what it allows comes from a `cors_policy` on the virtual host or route."""
    return {"name": CORS, "typed_config": {"@type": CORS_FILTER}}


def cors_policy(origins: Sequence[str], methods: Sequence[str], allow_headers: Sequence[str],
                expose_headers: Sequence[str], max_age_s: int) -> dict:
    """`typed_per_filter_config` allowing exactly `origins` (no credentials: cookies never count).
    A preflight from any other origin is answered by Envoy without CORS headers, so the browser
    refuses the call and nothing behind Envoy sees the OPTIONS request."""
    return {
        CORS: {
            "@type": CORS_POLICY,
            "allow_origin_string_match": [{"exact": origin} for origin in origins],
            "allow_methods": ", ".join(methods),
            "allow_headers": ", ".join(allow_headers),
            "expose_headers": ", ".join(expose_headers),
            "max_age": str(max_age_s),
            "allow_credentials": False,
            "forward_not_matching_preflights": False,
        }
    }


def disabled_filter(filter_name: str) -> dict:
    """`typed_per_filter_config` that switches one HTTP filter off for a route."""
    return {filter_name: {"@type": FILTER_CONFIG, "disabled": True}}


def connection_manager(stat_prefix: str, idle_timeout_s: float, log: bool, route_config: dict,
                       http_filters: list[dict], **settings: object) -> dict:
    """An HTTP connection manager; `settings` adds listener-specific options."""
    return {
        "@type": HCM,
        "stat_prefix": stat_prefix,
        # AUTO: HTTP/1.1 (REST, SSE, backends' APIs) and h2c with prior knowledge (gRPC) on one port.
        "codec_type": "AUTO",
        "http2_protocol_options": dict(HTTP2_WINDOWS),
        "stream_idle_timeout": duration(idle_timeout_s),
        "access_log": access_log(log),
        **settings,
        "route_config": route_config,
        "http_filters": http_filters,
    }


def listener(name: str, address: str, port: int, hcm: dict, transport_socket: dict | None = None) -> dict:
    chain: dict = {"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]}
    if transport_socket is not None:
        chain["transport_socket"] = transport_socket
    return {"name": name, "address": socket_address(address, port), "filter_chains": [chain]}


DOWNSTREAM_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
UPSTREAM_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"


def _certificate(cert_file: str, key_file: str) -> dict:
    return {"certificate_chain": {"filename": cert_file}, "private_key": {"filename": key_file}}


def downstream_tls(cert_file: str, key_file: str, alpn: Sequence[str] = ("h2", "http/1.1"),
                   client_ca: str = "") -> dict:
    """A listener's TLS: our certificate, TLS 1.2 at least, ALPN so gRPC gets h2 and REST HTTP/1.1.
    With `client_ca`, mutual TLS: only clients presenting a certificate of that CA get in."""
    context: dict = {
        "tls_params": {"tls_minimum_protocol_version": "TLSv1_2"},
        "tls_certificates": [_certificate(cert_file, key_file)],
        "alpn_protocols": list(alpn),
    }
    typed_config: dict = {"@type": DOWNSTREAM_TLS, "common_tls_context": context}
    if client_ca:
        context["validation_context"] = {"trusted_ca": {"filename": client_ca}}
        typed_config["require_client_certificate"] = True
    return {"name": "envoy.transport_sockets.tls", "typed_config": typed_config}


def upstream_mtls(ca_file: str, cert_file: str, key_file: str, alpn: Sequence[str]) -> dict:
    """A cluster's mutual TLS: verify the upstream against `ca_file`, present our certificate.
    Active health checks use the cluster's transport socket, so they go over it too."""
    return {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": UPSTREAM_TLS,
            "common_tls_context": {
                "tls_params": {"tls_minimum_protocol_version": "TLSv1_2"},
                "tls_certificates": [_certificate(cert_file, key_file)],
                "validation_context": {"trusted_ca": {"filename": ca_file}},
                "alpn_protocols": list(alpn),
            },
        },
    }


def upstream_tls(host: str, ca_file: str, alpn: Sequence[str] = ("http/1.1",)) -> dict:
    """A cluster's TLS to a server on the internet or behind a private CA: SNI `host` (not for an
    IP), its certificate verified against `ca_file` and required to name `host`. Envoy checks no
    name unless told (match_typed_subject_alt_names); a DNS SAN match honours wildcards."""
    san_type = "IP_ADDRESS" if is_ip(host) else "DNS"
    context: dict = {
        "common_tls_context": {
            "tls_params": {"tls_minimum_protocol_version": "TLSv1_2"},
            "validation_context": {
                "trusted_ca": {"filename": ca_file},
                "match_typed_subject_alt_names": [{"san_type": san_type, "matcher": {"exact": host}}],
            },
            "alpn_protocols": list(alpn),
        },
    }
    if san_type == "DNS":
        context["sni"] = host
    return {"name": "envoy.transport_sockets.tls", "typed_config": {"@type": UPSTREAM_TLS, **context}}


# HTTP status of an Envoy-generated reply -> google.rpc.Code, for REST callers' error bodies.
HTTP_TO_GRPC_CODE = {400: 3, 401: 16, 403: 7, 404: 5, 408: 4, 413: 8, 429: 8, 500: 13, 501: 12, 503: 14, 504: 4}
GRPC_UNKNOWN = 2


def _header(name: str, **match: object) -> dict:
    return {"header_filter": {"header": {"name": name, **match}}}


def _status_filter(op: str, code: int) -> dict:
    value = {"default_value": code, "runtime_key": f"llmmesh.local_reply.{op.lower()}_{code}"}
    return {"status_code_filter": {"comparison": {"op": op, "value": value}}}


def _status_json(code: int) -> dict:
    return {
        "json_format": {"code": code, "message": "%LOCAL_REPLY_BODY%", "details": []},
        "content_type": "application/json",
    }


def json_local_replies() -> dict:
    """Envoy's own replies to REST callers (unknown path, bad JSON, no healthy upstream) become a
    JSON google.rpc.Status, like transcoded upstream errors.

    The first mapper catches native gRPC calls and changes nothing, so they keep a plain
    grpc-message. Transcoded calls also carry application/grpc by then, but keep their REST path
    in x-envoy-original-path.
    """
    native_grpc = {
        "and_filter": {
            "filters": [
                _header("content-type", string_match={"prefix": "application/grpc"}),
                _header("x-envoy-original-path", present_match=False),
            ]
        }
    }
    mappers: list[dict] = [{"filter": native_grpc}]
    mappers += [
        {"filter": _status_filter("EQ", http), "body_format_override": _status_json(code)}
        for http, code in HTTP_TO_GRPC_CODE.items()
    ]
    mappers.append({"filter": _status_filter("GE", 0), "body_format_override": _status_json(GRPC_UNKNOWN)})
    return {"mappers": mappers}


OTEL_TRACER = "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig"
COLLECTOR_CLUSTER = "otel_collector"


def tracing(service_name: str, sampling_percent: float) -> dict:
    """An HTTP connection manager's `tracing`: Envoy's OpenTelemetry tracer, OTLP/gRPC to
    COLLECTOR_CLUSTER. It continues an incoming W3C traceparent and sends its own span's onward."""
    return {
        "tracing": {
            "random_sampling": {"value": sampling_percent},
            "spawn_upstream_span": False,
            "provider": {
                "name": "envoy.tracers.opentelemetry",
                "typed_config": {
                    "@type": OTEL_TRACER,
                    "grpc_service": {"envoy_grpc": {"cluster_name": COLLECTOR_CLUSTER}, "timeout": "1s"},
                    "service_name": service_name,
                },
            },
        }
    }


def tracer_runtime() -> dict:
    """Envoy's OpenTelemetry tracer exports every 5 s by default; 1 s keeps a trace whole soon
    after its request ends (the services' batch exporter waits as long)."""
    return {"layers": [{"name": "tracing", "static_layer": {"tracing.opentelemetry.flush_interval_ms": 1000}}]}


def collector_cluster(endpoint: Endpoint) -> dict:
    """The OTLP/gRPC collector the tracer exports to (plaintext HTTP/2)."""
    return {**cluster(COLLECTOR_CLUSTER, [endpoint], typed_extension_protocol_options=http2_upstream()),
            "lb_policy": "ROUND_ROBIN"}
