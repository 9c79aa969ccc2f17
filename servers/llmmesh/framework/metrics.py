"""Prometheus metrics for gRPC servers (go-grpc-prometheus names) on an injectable registry."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

_LABELS = ("grpc_type", "grpc_service", "grpc_method")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


@dataclass(frozen=True)
class GrpcServerMetrics:
    started: Counter
    handled: Counter
    handling_seconds: Histogram
    msg_sent: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> GrpcServerMetrics:
        return cls(
            started=Counter("grpc_server_started_total", "RPCs started on the server.", _LABELS,
                            registry=registry),
            handled=Counter("grpc_server_handled_total", "RPCs completed on the server, by code.",
                            (*_LABELS, "grpc_code"), registry=registry),
            handling_seconds=Histogram("grpc_server_handling_seconds",
                                       "Time from RPC start to its last response.", _LABELS,
                                       buckets=LATENCY_BUCKETS, registry=registry),
            msg_sent=Counter("grpc_server_msg_sent_total", "Stream messages sent by the server.", _LABELS,
                             registry=registry),
        )


@dataclass
class MetricsEndpoint:
    port: int
    _server: WSGIServer
    _thread: threading.Thread

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> MetricsEndpoint:
    """Serve `/metrics` on its own port (0 picks a free one), away from the gRPC port."""
    server, thread = start_http_server(port, addr=host, registry=registry)
    return MetricsEndpoint(server.server_port, server, thread)
