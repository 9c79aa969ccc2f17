"""LLM-level metrics of the inference service. Labels are bounded: `model` only ever takes names
from the backends' inventories (unknown models are rejected before any metric is touched), and
`backend` only configured backend names; `priority` is interactive or batch, `reason` one of the
admission queue's refusals (full, evicted, timeout); `key` an API key's name from the key file (never
its secret), "anonymous" when auth is off."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30)
_TOTAL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
# Most requests wait nothing (the first bucket); the rest up to LLMMESH_QUEUE_MAX_WAIT_S.
_QUEUE_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


@dataclass(frozen=True)
class InferenceMetrics:
    ttft: Histogram
    latency: Histogram
    prompt_tokens: Counter
    output_tokens: Counter
    # Usage per caller (the key a pattern run's model calls are charged to): what its budget is charged.
    key_tokens: Counter
    tokens_per_second: Histogram
    failovers: Counter
    in_flight: Gauge
    healthy: Gauge
    circuit_open: Gauge
    queue_depth: Gauge
    queue_wait: Histogram
    queue_refused: Counter
    # Model routes (llmmesh.inference.routes): labels are configured route and model names.
    route_weight: Gauge
    route_ejections: Counter
    route_fallbacks: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> InferenceMetrics:
        return cls(
            ttft=Histogram("llmmesh_inference_time_to_first_token_seconds", "Time to first token.",
                           ("model", "backend"), buckets=_TTFT_BUCKETS, registry=registry),
            latency=Histogram("llmmesh_inference_request_seconds", "Total generation latency.",
                              ("model", "backend"), buckets=_TOTAL_BUCKETS, registry=registry),
            prompt_tokens=Counter("llmmesh_inference_prompt_tokens_total", "Prompt tokens the backends read.",
                                  ("model", "backend"), registry=registry),
            output_tokens=Counter("llmmesh_inference_output_tokens_total", "Tokens generated.",
                                  ("model", "backend"), registry=registry),
            key_tokens=Counter("llmmesh_key_tokens_total", "Tokens charged per API key, by kind (prompt, output).",
                               ("key", "kind"), registry=registry),
            tokens_per_second=Histogram("llmmesh_inference_tokens_per_second", "Decode rate per generation.",
                                        ("model", "backend"), buckets=(1, 5, 10, 25, 50, 100, 250, 1000, 5000),
                                        registry=registry),
            failovers=Counter("llmmesh_inference_failovers_total", "Attempts abandoned for another backend.",
                              ("model", "backend"), registry=registry),
            in_flight=Gauge("llmmesh_backend_in_flight", "Generations in flight per backend.", ("backend",),
                            registry=registry),
            healthy=Gauge("llmmesh_backend_healthy", "1 if the backend passed its last probe.", ("backend",),
                          registry=registry),
            circuit_open=Gauge("llmmesh_backend_circuit_open", "1 if the backend's circuit is open.",
                               ("backend",), registry=registry),
            queue_depth=Gauge("llmmesh_inference_queue_depth", "Requests waiting for a backend slot.",
                              ("model", "priority"), registry=registry),
            queue_wait=Histogram("llmmesh_inference_queue_wait_seconds",
                                 "Time from arrival to a backend slot, per admitted attempt.",
                                 ("model", "priority"), buckets=_QUEUE_BUCKETS, registry=registry),
            queue_refused=Counter("llmmesh_inference_queue_refused_total",
                                  "Requests the admission queue turned away (RESOURCE_EXHAUSTED).",
                                  ("model", "priority", "reason"), registry=registry),
            route_weight=Gauge("llmmesh_route_weight", "A route target's weight now (0: ejected by the canary guard).",
                               ("route", "model"), registry=registry),
            route_ejections=Counter("llmmesh_route_canary_ejections_total",
                                    "Canaries the guard shifted to weight 0.", ("route", "model"), registry=registry),
            route_fallbacks=Counter("llmmesh_route_fallbacks_total",
                                    "Generations a later stage of a route served (labelled with its model).",
                                    ("route", "model"), registry=registry),
        )
