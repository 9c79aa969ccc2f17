"""Readiness probes the launcher polls while a process starts: an HTTP 200, a gRPC health check
answering SERVING, Envoy reporting clusters healthy. Each raises or returns False until ready."""

from __future__ import annotations

import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from llmmesh.framework.tls import client_ssl_context, sync_channel
from llmmesh.settings import ServiceTlsSettings


def http_ok(url: str, tls: ServiceTlsSettings | None = None) -> bool:
    if tls is not None and tls.enabled:
        url = url.replace("http://", "https://", 1)
        return httpx.get(url, timeout=1.0, verify=client_ssl_context(tls)).status_code == 200
    return httpx.get(url, timeout=1.0).status_code == 200


def grpc_serving(port: int, tls: ServiceTlsSettings | None = None) -> bool:
    with sync_channel(f"127.0.0.1:{port}", tls or ServiceTlsSettings()) as ch:
        resp = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=1.0)
    return resp.status == health_pb2.HealthCheckResponse.SERVING


def clusters_healthy(admin_port: int, prefixes: tuple[str, ...]) -> bool:
    """Every host of every Envoy cluster whose name starts with one of `prefixes` is healthy."""
    text = httpx.get(f"http://127.0.0.1:{admin_port}/clusters", timeout=1.0).text
    lines = [ln for ln in text.splitlines() if "::health_flags::" in ln and ln.startswith(prefixes)]
    return bool(lines) and all(ln.endswith("::healthy") for ln in lines)
