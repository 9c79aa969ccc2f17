"""OpenTelemetry tracing for every llmmesh process: one trace per request, W3C trace context.

Configured by the standard variables, read by the OpenTelemetry SDK itself:
OTEL_EXPORTER_OTLP_ENDPOINT (or _TRACES_ENDPOINT) switches tracing on (OTLP/gRPC), OTEL_SERVICE_NAME
and OTEL_RESOURCE_ATTRIBUTES name the process, OTEL_TRACES_SAMPLER/_ARG sample, OTEL_BSP_* batch.
Unset (or OTEL_SDK_DISABLED=true, OTEL_TRACES_EXPORTER=none), nothing is installed: the API's
no-op tracer answers, and the hot paths skip even that (`enabled()`), so tracing off costs nothing.

Spans carry the OpenTelemetry GenAI semantic conventions (`gen_ai.*`) and llmmesh's own
`llmmesh.*` attributes. Prompts and completions are recorded only when switched on
(LLMMESH_TRACE_CONTENT=true or OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true).

Spans that stay current across an async generator's `yield`s are attached to the task's context
and detached where they started; a generator finalised elsewhere cannot detach (ValueError), which
is harmless: that context is ending.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

log = logging.getLogger("llmmesh.tracing")

TRACER = trace.get_tracer("llmmesh")
# The GenAI instrumentations' own switch for recording prompts and completions.
CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
_TRUE = ("1", "true", "yes", "on")

_enabled = False
_content = False


def wanted(env: Mapping[str, str] = os.environ) -> bool:
    """Whether the OTEL_* variables ask for traces to be exported."""
    if env.get("OTEL_SDK_DISABLED", "").lower() in _TRUE:
        return False
    if env.get("OTEL_TRACES_EXPORTER", "otlp").lower() in ("none", ""):
        return False
    return bool(env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def configure(default_service_name: str, env: Mapping[str, str] = os.environ, *, content: bool = False) -> bool:
    """Install the SDK's tracer provider with an OTLP/gRPC exporter when the environment asks for
    it; returns whether tracing is on. `default_service_name` names the process unless
    OTEL_SERVICE_NAME (or service.name in OTEL_RESOURCE_ATTRIBUTES) does. `content`
    (Settings.trace_content) or OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT records prompts
    and completions."""
    global _enabled, _content
    _content = content or env.get(CONTENT_ENV, "").lower() in _TRUE
    if _enabled or not wanted(env):
        return _enabled
    # Imported only when on: a process without tracing never loads the SDK.
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: default_service_name}))
    provider = TracerProvider(resource=resource)  # sampler from OTEL_TRACES_SAMPLER/_ARG
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _enabled = True
    log.info("tracing on", extra={"service_name": resource.attributes.get(SERVICE_NAME)})
    return True


def shutdown() -> None:
    """Flush what is buffered (the SDK also does it at exit)."""
    provider = trace.get_tracer_provider()
    if _enabled and hasattr(provider, "shutdown"):
        provider.shutdown()


def enabled() -> bool:
    return _enabled


def record_content() -> bool:
    """Prompts and completions go into spans only when switched on."""
    return _enabled and _content


# ---- context propagation ------------------------------------------------------------------


def inject(carrier: MutableMapping[str, str]) -> None:
    """traceparent (and tracestate) of the current span into outgoing headers or metadata."""
    if _enabled:
        propagate.inject(carrier)


def extract(carrier: Mapping[str, str]) -> otel_context.Context:
    return propagate.extract(carrier)


def current_ids() -> tuple[str, str] | None:
    """(trace_id, span_id) of the current span, hex, or None."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


def exemplar() -> dict[str, str] | None:
    """A histogram observation's exemplar: the current trace id (Prometheus exposes it in the
    OpenMetrics format, and Grafana links it to the trace). None when tracing is off."""
    ids = current_ids() if _enabled else None
    return None if ids is None else {"trace_id": ids[0]}


# ---- spans --------------------------------------------------------------------------------


@contextlib.contextmanager
def attached(span: Span) -> Iterator[Span]:
    """`span` current inside the block (safe across an async generator's yields)."""
    if not _enabled:
        yield span
        return
    token = otel_context.attach(trace.set_span_in_context(span))
    try:
        yield span
    finally:
        with contextlib.suppress(ValueError):
            _detach(token)


def _detach(token: object) -> None:
    # otel_context.detach logs an error where contextvars raises; here, raising is expected.
    otel_context._RUNTIME_CONTEXT.detach(token)  # type: ignore[attr-defined]


@contextlib.contextmanager
def span(name: str, attributes: Mapping[str, Any] | None = None, *, kind: SpanKind = SpanKind.INTERNAL,
         parent: otel_context.Context | None = None, current: bool = True) -> Iterator[Span]:
    """A span for the block: an exception escaping it marks the span ERROR (cancellation does
    not). Not current (`current=False`) for a span with no children, such as a queue wait."""
    if not _enabled:
        yield trace.INVALID_SPAN
        return
    s = TRACER.start_span(name, context=parent, kind=kind, attributes=attributes)
    try:
        if current:
            with attached(s):
                yield s
        else:
            yield s
    except Exception as exc:
        fail(s, exc)
        raise
    finally:
        s.end()


def fail(s: Span, exc: BaseException) -> None:
    failed(s, str(exc), type(exc).__name__)


def failed(s: Span, message: str, error_type: str) -> None:
    """ERROR status for a failure that was handled, not raised (a plan step's outcome)."""
    s.set_status(Status(StatusCode.ERROR, message[:300]))
    s.set_attribute("error.type", error_type)


def current_event(name: str, attributes: Mapping[str, Any]) -> None:
    """An event on the current span (a failover on the generation's span)."""
    if _enabled:
        trace.get_current_span().add_event(name, dict(attributes))


def current_attributes(attributes: Mapping[str, Any]) -> None:
    """Attributes on the current span (a pattern run's id on its RPC's server span)."""
    if _enabled:
        set_attributes(trace.get_current_span(), attributes)


def set_attributes(s: Span, attributes: Mapping[str, Any]) -> None:
    """Attributes whose value is not None (OpenTelemetry refuses None)."""
    if s.is_recording():
        s.set_attributes({k: v for k, v in attributes.items() if v is not None})


def messages_json(messages: Sequence[Any]) -> str:
    """Chat messages (anything with role and content) as the GenAI conventions' JSON."""
    return json.dumps([{"role": getattr(m, "role", ""), "content": getattr(m, "content", "")} for m in messages])


# ---- GenAI semantic conventions -----------------------------------------------------------


def genai_request(operation: str, model: str, sampling: Any = None, provider: str = "llmmesh") -> dict[str, Any]:
    """Request attributes of a model call span (named `f"{operation} {model}"`)."""
    attrs: dict[str, Any] = {"gen_ai.operation.name": operation, "gen_ai.request.model": model,
                             "gen_ai.provider.name": provider, "gen_ai.system": provider}
    if sampling is not None:
        attrs["gen_ai.request.max_tokens"] = getattr(sampling, "max_tokens", None)
        attrs["gen_ai.request.temperature"] = getattr(sampling, "temperature", None)
    return attrs


def genai_response(done: Any) -> dict[str, Any]:
    """Response attributes from a generation's final stats: the inference contract's
    GenerationDone or the engine's GenerationStats (the same field names)."""
    backends = tuple(getattr(done, "backends", ()) or ()) or ((done.backend,) if done.backend else ())
    return {
        "gen_ai.response.model": done.model or None,
        "gen_ai.usage.input_tokens": done.prompt_tokens,
        "gen_ai.usage.output_tokens": done.output_tokens,
        "gen_ai.response.finish_reasons": (done.done_reason,) if done.done_reason else None,
        "llmmesh.backend": ",".join(backends) or None,
        "llmmesh.attempt": done.attempts or None,
        "llmmesh.failed_over": done.failed_over,
        "llmmesh.queue_wait_ms": round(done.queue_wait_ms, 3),
        "llmmesh.cache_hit": done.cached,
    }
