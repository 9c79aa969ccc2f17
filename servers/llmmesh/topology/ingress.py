"""The ingress: one listener carrying gRPC, and REST/SSE through gRPC-JSON transcoding, to one
cluster per service; plain-HTTP routes (the gateway's OpenAI API, the playground) bypass the
transcoder and get clusters of their own."""

from __future__ import annotations

from llmmesh.topology import envoy_parts as parts
from llmmesh.topology.description import (
    HEALTH_SERVICE,
    INGRESS_HEADER,
    INGRESS_INFRA_HOST,
    ON_BEHALF_OF_HEADER,
    REFLECTION_SERVICES,
    RUN_ID_HEADER,
    ServiceSpec,
)
from llmmesh.topology.envoy_parts import duration
from llmmesh.topology.params import PlainHttpRoute, RenderParams, listener_tracing

TRANSCODER = "envoy.filters.http.grpc_json_transcoder"
TRANSCODER_TYPE = "type.googleapis.com/envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder"
# gRPC services answered by the inference process, whichever shape: it advertises the whole mesh.
INFRA_SERVICES = (HEALTH_SERVICE, *REFLECTION_SERVICES)
# What a page on an allowed origin may send and read (RenderParams.cors_origins). `authorization`
# is named because a `*` never covers it; the `*` admits SDKs' own headers (OpenAI's x-stainless-*).
CORS_METHODS = ("GET", "POST", "DELETE")  # DELETE: the run store's (the playground's History)
CORS_ALLOW_HEADERS = ("authorization", "x-api-key", "content-type", "accept", "x-request-id",
                      "x-llmmesh-timeout-s", "grpc-timeout", "*")
CORS_EXPOSE_HEADERS = ("x-request-id", RUN_ID_HEADER, "retry-after", "grpc-status", "grpc-message")
CORS_MAX_AGE_S = 600


def ingress_listener(params: RenderParams) -> dict:
    route_config = {
        "name": "ingress",
        "virtual_hosts": [
            {
                "name": "llmmesh",
                "domains": ["*"],
                "routes": _routes(params),
                # Services tell front-door calls (health and reflection need a key there) from
                # probes on their own port; nobody outside may claim to act for another key.
                "request_headers_to_add": [parts.set_header(INGRESS_HEADER, "1")],
                "request_headers_to_remove": [ON_BEHALF_OF_HEADER],
                **_cors_policy(params),
            }
        ],
    }
    # CORS comes first: it answers preflights before the transcoder would reject OPTIONS.
    cors = [parts.cors_filter()] if params.cors_origins else []
    hcm = parts.connection_manager(
        "ingress", params.stream_idle_timeout_s, params.access_log, route_config,
        [*cors, _transcoder(params), _grpc_stats(), parts.router_filter()],
        use_remote_address=True, normalize_path=True, merge_slashes=True,
        local_reply_config=parts.json_local_replies(),
        **listener_tracing(params, "ingress"),
    )
    tls = params.ingress_tls
    socket = parts.downstream_tls(tls.cert_file, tls.key_file) if tls is not None else None
    return parts.listener("ingress", params.bind_address, params.ingress_port, hcm, socket)


def ingress_clusters(params: RenderParams) -> list[dict]:
    """One gRPC cluster per service, then one HTTP/1.1 cluster per plain-route cluster name."""
    clusters = [_service_cluster(params, s) for s in params.services]
    # Routes sharing a cluster (validated to agree) render it once.
    plain: dict[str, PlainHttpRoute] = {}
    for r in params.plain_routes:
        plain.setdefault(r.cluster_name, r)
    return clusters + [_plain_cluster(params, r) for r in plain.values()]


def _cors_policy(params: RenderParams) -> dict:
    """Every route of the virtual host (REST, SSE, the gateway's) shares one policy; none by default."""
    if not params.cors_origins:
        return {}
    policy = parts.cors_policy(params.cors_origins, CORS_METHODS, CORS_ALLOW_HEADERS, CORS_EXPOSE_HEADERS,
                               CORS_MAX_AGE_S)
    return {"typed_per_filter_config": policy}


def _rest_routes(params: RenderParams) -> list[dict]:
    """With CORS on, a route per REST prefix. The CORS filter runs before the transcoder, on the path
    as sent; without these a REST path's route is the 404 below, a direct response, which the
    filter skips (no preflight answered, no headers added). Transcoded requests are routed again by
    their gRPC path, so these only ever carry preflights, which the filter answers itself."""
    if not params.cors_origins:
        return []
    return [{"name": f"rest_{s.name}", "match": {"path_separated_prefix": s.rest_prefix},
             "route": {"cluster": f"svc_{s.name}"}} for s in params.services]


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


def _grpc_routes(params: RenderParams) -> list[dict]:
    routes = []
    for s in params.services:
        # A method's exact path before its service's prefix: Envoy takes the first route that matches.
        routes += [_grpc_route(params, {"path": f"/{s.grpc_service}/{m}"}, f"svc_{s.name}", IDEMPOTENT_RETRY_ON)
                   for m in s.idempotent_methods]
        routes.append(_grpc_route(params, {"prefix": f"/{s.grpc_service}/"}, f"svc_{s.name}", NEVER_SENT_RETRY_ON))
    # Health and reflection only read.
    routes += [_grpc_route(params, {"prefix": f"/{name}/"}, f"svc_{INGRESS_INFRA_HOST}", IDEMPOTENT_RETRY_ON)
               for name in INFRA_SERVICES]
    return routes


# REST paths never get here (the transcoder 404s unknown ones first); gRPC calls to a service
# outside the mesh do, and see UNIMPLEMENTED.
_NOT_FOUND = {"name": "not_found", "match": {"prefix": "/"},
              "direct_response": {"status": 404, "body": {"inline_string": "no route"}}}


def _routes(params: RenderParams) -> list[dict]:
    plain = [_plain_route(params, r) for r in params.plain_routes]
    return [*_grpc_routes(params), *plain, *_rest_routes(params), _NOT_FOUND]


def internal_listener(params: RenderParams) -> dict:
    """The mesh-internal listener on `params.internal_port`: the ingress's gRPC routes (same
    clusters, retries, health-checked replicas), no REST, no gateway routes, no CORS. It is how a
    component inside the mesh reaches every service whatever the shape — the gateway's MCP server
    runs the patterns through it — where the public ingress speaks TLS only. Callers present their
    own API keys; calls here are not marked as the front door's (INGRESS_HEADER). With mutual TLS
    to the services it is mutual TLS too: the mesh certificate, clients of the mesh's CA only."""
    assert params.internal_port is not None
    route_config = {
        "name": "internal",
        "virtual_hosts": [
            {
                "name": "llmmesh-internal",
                "domains": ["*"],
                "routes": [*_grpc_routes(params), _NOT_FOUND],
                "request_headers_to_remove": [ON_BEHALF_OF_HEADER],
            }
        ],
    }
    hcm = parts.connection_manager("internal", params.stream_idle_timeout_s, params.access_log, route_config,
                                   [_grpc_stats(), parts.router_filter()], normalize_path=True, merge_slashes=True)
    tls = params.upstream_tls
    socket = (parts.downstream_tls(tls.cert_file, tls.key_file, ("h2",), client_ca=tls.ca_file)
              if tls is not None and tls.enabled else None)
    return parts.listener("internal", params.bind_address, params.internal_port, hcm, socket)


# Retries that never replay a request a servicer may have started: the connection was refused, the
# HTTP/2 stream refused (a draining replica's GOAWAY), or the upstream reset before Envoy handed
# it the request. Not a reset after that (a replica killed with the call in flight, or one that
# died just before Envoy noticed its pooled connection closed): its servicer may have begun the run.
# Not gRPC UNAVAILABLE either: services answer it after real work (no backend left mid-run, a
# model's malformed output, a jury below quorum), and replaying a whole pattern run would multiply
# its model calls. Failover between backends is the inference service's job, client retries the
# SDK's (idempotent methods only).
NEVER_SENT_RETRY_ON = "connect-failure,refused-stream,reset-before-request"
# Methods without side effects may be sent twice: any reset before the answer began is retried too.
IDEMPOTENT_RETRY_ON = f"{NEVER_SENT_RETRY_ON},reset"


def _grpc_route(params: RenderParams, match: dict, cluster: str, retry_on: str) -> dict:
    return {
        "name": (match.get("path") or match["prefix"]).strip("/"),
        "match": match,
        "route": {
            "cluster": cluster,
            # Streams run as long as the model generates; silence is bounded by idle_timeout.
            "timeout": "0s",
            "idle_timeout": duration(params.stream_idle_timeout_s),
            # Honour the client's grpc-timeout (its deadline) instead of the disabled route timeout.
            "max_stream_duration": {"grpc_timeout_header_max": "0s"},
            "retry_policy": {
                "retry_on": retry_on,
                "num_retries": 3,
                # On another replica: a host that just failed is skipped, as many times as it takes
                # (least-request prefers a dead replica: it has no requests in flight).
                "retry_host_predicate": [
                    {
                        "name": "envoy.retry_host_predicates.previous_hosts",
                        "typed_config": {
                            "@type": "type.googleapis.com/"
                            "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
                        },
                    }
                ],
                "host_selection_retry_max_attempts": 10,
                "retry_back_off": {"base_interval": "0.1s", "max_interval": "1s"},
            },
        },
    }


def _plain_route(params: RenderParams, r: PlainHttpRoute) -> dict:
    return {
        "name": f"http_{r.name}",
        "match": {"path" if r.exact else "prefix": r.prefix},
        "route": {
            "cluster": r.cluster_name,
            "timeout": "0s",
            "idle_timeout": duration(params.stream_idle_timeout_s),
            # Only where the request certainly never reached the upstream: POSTs are not idempotent.
            "retry_policy": {"retry_on": "connect-failure,refused-stream", "num_retries": 2},
        },
        "typed_per_filter_config": parts.disabled_filter(TRANSCODER),
    }


def _upstream_socket(params: RenderParams, alpn: tuple[str, ...]) -> dict:
    tls = params.upstream_tls
    if tls is None or not tls.enabled:
        return {}
    return {"transport_socket": parts.upstream_mtls(tls.ca_file, tls.cert_file, tls.key_file, alpn)}


def _service_cluster(params: RenderParams, spec: ServiceSpec) -> dict:
    return parts.cluster(
        f"svc_{spec.name}",
        params.service_endpoints[spec.name],
        typed_extension_protocol_options=parts.http2_upstream(),
        **_upstream_socket(params, ("h2",)),
        health_checks=[parts.health_check(params.service_hc_interval_s, _grpc_health_check(spec))],
        # gRPC statuses count as their HTTP mapping (UNAVAILABLE=503, INTERNAL=500). With one host
        # (monolith) ejection just enters panic mode, which still routes to it.
        outlier_detection={
            "consecutive_5xx": 5,
            "consecutive_gateway_failure": 3,
            "enforcing_consecutive_gateway_failure": 100,
            "interval": "5s",
            "base_ejection_time": "10s",
            "max_ejection_percent": 50,
        },
        # Every request may have its retry outstanding at once (as many as Envoy's default
        # max_requests): these retries never replay a started run, and the requests a killed replica
        # had all retry together, in their backoff. Envoy's default, 3 retries at a time per
        # cluster, failed the rest of them.
        circuit_breakers={"thresholds": [{"priority": "DEFAULT", "max_retries": 1024}]},
        # Workers see a replica's health as soon as the health checks do (the default merges updates
        # for 1 s): a replica back from a restart takes load, and stands in for the next one to die, at once.
        common_lb_config={"update_merge_window": "0s"},
    )


def _grpc_health_check(spec: ServiceSpec) -> dict:
    return {"grpc_health_check": {"service_name": spec.grpc_service}}


def _plain_cluster(params: RenderParams, r: PlainHttpRoute) -> dict:
    settings = _upstream_socket(params, ("http/1.1",))
    if r.health_path:
        check = {"http_health_check": {"path": r.health_path}}
        settings["health_checks"] = [parts.health_check(params.service_hc_interval_s, check)]
    return parts.cluster(r.cluster_name, r.endpoints, **settings)
