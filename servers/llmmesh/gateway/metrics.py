"""Prometheus metrics of the gateway on an injectable registry, served at `/metrics` on its port."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from llmmesh.framework.metrics import LATENCY_BUCKETS


@dataclass(frozen=True)
class GatewayMetrics:
    requests: Counter
    duration: Histogram
    in_flight: Gauge
    disconnects: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> GatewayMetrics:
        return cls(
            requests=Counter("llmmesh_gateway_requests_total", "HTTP requests answered by the gateway.",
                             ("route", "method", "status"), registry=registry),
            duration=Histogram("llmmesh_gateway_request_duration_seconds",
                               "Time from request to the last byte of the response (streams included).",
                               ("route", "method"), buckets=LATENCY_BUCKETS, registry=registry),
            in_flight=Gauge("llmmesh_gateway_requests_in_flight", "Requests (and streams) in progress.",
                            ("route",), registry=registry),
            disconnects=Counter("llmmesh_gateway_client_disconnects_total",
                                "Requests whose client went away before the answer ended (the model call "
                                "was cancelled).", ("route",), registry=registry),
        )
