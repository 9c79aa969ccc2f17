"""Model calls with routing, failover and accounting — plain asyncio, no gRPC.

A generation tries backends chosen by the pool, each attempt holding a slot of the admission queue
(llmmesh.inference.admission): with every backend busy it waits there, reporting its place, rather
than being refused. A failure before the first token simply moves to another backend after a
backoff. A failure mid-stream continues on another backend from the text already delivered (sent as
an assistant prefix), so the caller sees one uninterrupted stream whose final stats record the
failover; either retry goes to the head of the queue. Cancellation needs no code here: cancelling
the consuming task unwinds the `with` around the ticket (out of the queue, or the slot freed) and
the `async with` around the backend response, which closes the HTTP connection.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import aclosing, asynccontextmanager
from dataclasses import replace
from functools import partial

from llmmesh.common.backends import parse_backends
from llmmesh.common.model_call import (
    BackendDone,
    EmbedResult,
    Finished,
    GenerationEvent,
    GenerationStats,
    ModelCall,
    TextDelta,
    ToolCalls,
)
from llmmesh.framework import tracing
from llmmesh.framework.errors import TOOLS_UNSUPPORTED, FieldViolation, InvalidArgument, Unavailable, Unimplemented
from llmmesh.inference.admission import Admission, Claim
from llmmesh.inference.capabilities import Capabilities, merge, refuses_tools
from llmmesh.inference.failures import BackendFailure, BackendRejected, ModelMissing, Unsupported
from llmmesh.inference.fair_share import FairShare
from llmmesh.inference.inventory import InventoryRefresher
from llmmesh.inference.metrics import InferenceMetrics
from llmmesh.inference.pool import Backend, BackendPool, make_backend
from llmmesh.inference.routes import GuardSettings, ModelRoutes
from llmmesh.inference.transport import Transport
from llmmesh.settings import InferenceSettings

log = logging.getLogger("llmmesh.inference")


class InferenceEngine:
    def __init__(self, settings: InferenceSettings, metrics: InferenceMetrics,
                 transport: Transport | None = None, fair_share: FairShare | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        configs = parse_backends(settings.backends)
        backends = [make_backend(c, settings.breaker_failures, settings.breaker_open_s,
                                 anthropic_max_tokens=settings.anthropic_max_tokens) for c in configs]
        self.pool = BackendPool(backends, settings.max_inflight_per_backend)
        # `fair_share`: the queue's accounts shared by replicas (Redis); this process's own by default.
        self.admission = Admission(self.pool, metrics, settings.queue_max_length, settings.queue_max_wait_s,
                                   fair_share)
        self.routes = ModelRoutes(settings.aliases, GuardSettings.of(settings), metrics)
        # `transport` is the seam for unit tests: a fake in place of HTTP.
        self.transport = transport or Transport(
            settings.egress_url, settings.connect_timeout_s, settings.idle_timeout_s,
            max_connections=max(1, len(backends)) * settings.max_inflight_per_backend)
        self.inventory = InventoryRefresher(self.transport, backends, settings.inventory_refresh_s,
                                            timeout_s=settings.connect_timeout_s + 1.0,
                                            on_refresh=self._after_refresh)

    async def start(self) -> None:
        await self.inventory.start()

    def _after_refresh(self) -> None:
        self._publish_backend_gauges()
        self.admission.dispatch()  # a backend that came back takes queued requests at once

    async def close(self) -> None:
        await self.inventory.stop()
        await self.admission.close()
        await self.transport.close()

    # ---- models ----------------------------------------------------------------------------

    def default_model(self) -> str:
        """The configured default (alias resolved), else the first model any backend lists."""
        if self.settings.default_model:
            return self.routes.resolve(self.settings.default_model)
        models = self.pool.all_models()
        return models[0] if models else ""

    def resolve(self, model: str) -> str:
        """Alias or empty (the default) → a model name the pool knows; NOT_FOUND otherwise."""
        model = self.routes.resolve(model) if model else self.default_model()
        if not self.pool.known(model) and not self.routes.is_route(model):
            # Raises NotFound listing what is available.
            self.pool.pick(model)
        return model

    # ---- generation ------------------------------------------------------------------------

    async def generate(self, call: ModelCall, claim: Claim | None = None) -> AsyncIterator[GenerationEvent]:
        """Events of one generation: Queued while it waits for a slot (before its first token only),
        token deltas and tool calls, then Finished. `claim`: the caller's (request context) by default.
        A model route picks the model (by the caller's key when sticky) and falls back along its chain."""
        claim = claim or Claim.of_caller()
        call = replace(call, model=call.model or self.default_model())
        async with aclosing(self.routes.serve(call, claim.key, partial(self._generate_model, claim=claim))) as events:
            async for event in events:
                yield event

    async def _generate_model(self, call: ModelCall, claim: Claim | None = None) -> AsyncIterator[GenerationEvent]:
        model = self.resolve(call.model)
        call = replace(call, model=model)
        claim = claim or Claim.of_caller()
        started = time.perf_counter()
        first_token_at: float | None = None
        produced: list[str] = []
        delivered = 0  # tokens in `produced`: a delta may hold several (continuation joins some)
        tried: list[str] = []
        waited_s = 0.0
        while True:
            failure: BackendFailure | None = None
            # A retry (tried) goes to the head of the queue; it avoids the backends that failed it.
            with self.admission.enter(model, claim, avoid=frozenset(tried), urgent=bool(tried)) as ticket:
                with tracing.span("queue wait", {"gen_ai.request.model": model}, current=False) as queued:
                    async for place in ticket.wait():
                        if first_token_at is None:
                            yield place
                    queued.set_attribute("llmmesh.queue_wait_ms", round(ticket.waited_s * 1000, 3))
                waited_s += ticket.waited_s
                backend = ticket.backend
                tried.append(backend.name)
                prefix = "".join(produced)
                attempt_call = self._continuation(call, delivered) if prefix else call
                done: BackendDone | None = None
                try:
                    # Run the attempt to its natural end (never leave it suspended): only then does its
                    # guard record the success, and the ticket frees the slot.
                    async with aclosing(self._attempt(backend, attempt_call, prefix, len(tried))) as attempt:
                        async for event in attempt:
                            if isinstance(event, TextDelta):
                                if first_token_at is None:
                                    first_token_at = time.perf_counter()
                                    self.metrics.ttft.labels(model, backend.name).observe(
                                        first_token_at - started, exemplar=tracing.exemplar())
                                produced.append(event.text)
                                delivered += event.tokens
                                yield event
                            elif isinstance(event, ToolCalls):
                                yield event
                            else:
                                done = event
                except BackendFailure as exc:
                    failure = exc
            if failure is None:
                assert done is not None, "protocol adapters end every attempt with BackendDone or raise"
                yield Finished(self._stats(model, backend, done, tried, delivered, started, first_token_at,
                                           waited_s))
                return
            self.metrics.failovers.labels(model, backend.name).inc()
            tracing.current_event("failover", {"llmmesh.backend": backend.name, "llmmesh.attempt": len(tried),
                                               "error.type": failure.reason[:200]})
            log.warning("backend attempt failed", extra={
                "backend": backend.name, "model": model, "reason": failure.reason,
                "tokens_delivered": delivered, "attempt": len(tried)})
            if len(tried) >= self.settings.max_attempts:
                raise Unavailable(f"model {model!r}: {len(tried)} attempts failed; last: {failure.reason}",
                                  retry_after_s=1.0) from None
            await asyncio.sleep(self.settings.backoff_s * 2 ** (len(tried) - 1))

    def _continuation(self, call: ModelCall, tokens_done: int) -> ModelCall:
        max_tokens = call.sampling.max_tokens
        if max_tokens is not None:
            max_tokens = max(1, max_tokens - tokens_done)
        return replace(call, sampling=replace(call.sampling, max_tokens=max_tokens))

    async def _attempt(self, backend: Backend, call: ModelCall, prefix: str, attempt: int) -> AsyncIterator[
            TextDelta | ToolCalls | BackendDone]:
        """One backend's try; its span is the parent of the HTTP call (and so of the egress's)."""
        path, body = backend.protocol.request(call, prefix)
        attributes = {"llmmesh.backend": backend.name, "llmmesh.attempt": attempt,
                      "llmmesh.failed_over": attempt > 1, "gen_ai.request.model": call.model,
                      "gen_ai.provider.name": str(backend.config.protocol)}
        with tracing.span(f"attempt {backend.name}", attributes) as span:
            recording = span.is_recording()  # off: nothing more per token than this flag
            async with self._guarded(backend, call.model):
                async with self.transport.stream(backend, path, body) as lines:
                    async for event in backend.protocol.events(backend.name, lines, prefix):
                        if recording and isinstance(event, BackendDone):
                            tracing.set_attributes(span, {
                                "gen_ai.usage.input_tokens": event.prompt_tokens,
                                "gen_ai.usage.output_tokens": event.output_tokens,
                                "gen_ai.response.finish_reasons": (event.done_reason,) if event.done_reason else None})
                        yield event

    @asynccontextmanager
    async def _guarded(self, backend: Backend, model: str) -> AsyncIterator[None]:
        """The breaker verdict for one backend attempt (its slot is the admission ticket's)."""
        backend.breaker.on_attempt()
        healthy: bool | None = None  # None: abandoned (cancelled) — says nothing about the backend
        try:
            yield
            healthy = True
        except (ModelMissing, Unsupported, BackendRejected) as exc:
            healthy = True  # the backend answered sensibly; the request just can't be served there
            if isinstance(exc, ModelMissing):
                backend.models.discard(model)
            refused = isinstance(exc, BackendRejected) and refuses_tools(exc.message)
            if refused:
                # Remembered, so ListModels tells patterns to use prompted tool calls from now on.
                backend.refused_tools.add(backend.listed_name(model))
            if isinstance(exc, BackendRejected):
                raise InvalidArgument([FieldViolation("request", exc.message[:300])],
                                      f"backend {backend.name} rejected the request: {exc.message[:300]}",
                                      reason=TOOLS_UNSUPPORTED if refused else "") from None
            raise
        except BackendFailure as failure:
            healthy = False
            backend.last_error = failure.reason[:300]
            raise
        finally:
            if healthy is True:
                backend.breaker.on_success()
            elif healthy is False:
                backend.breaker.on_failure()
            else:
                backend.breaker.on_abandon()
            self._publish_backend_gauges()

    def _stats(self, model: str, backend: Backend, done: BackendDone, tried: list[str], delivered: int,
               started: float, first_token_at: float | None, waited_s: float) -> GenerationStats:
        now = time.perf_counter()
        total = now - started
        output_tokens = done.output_tokens or delivered
        if len(tried) > 1 and done.output_tokens:
            output_tokens = delivered  # counts from the last backend miss the continued prefix
        decode_s = now - first_token_at if first_token_at is not None else 0.0
        tps = output_tokens / decode_s if decode_s > 0 else 0.0
        self.metrics.latency.labels(model, backend.name).observe(total, exemplar=tracing.exemplar())
        self.metrics.prompt_tokens.labels(model, backend.name).inc(done.prompt_tokens)
        self.metrics.output_tokens.labels(model, backend.name).inc(output_tokens)
        if tps:
            self.metrics.tokens_per_second.labels(model, backend.name).observe(tps)
        return GenerationStats(
            model=model, backend=backend.name, done_reason=done.done_reason, prompt_tokens=done.prompt_tokens,
            output_tokens=output_tokens,
            time_to_first_token_ms=(first_token_at - started) * 1000 if first_token_at is not None else 0.0,
            total_ms=total * 1000, tokens_per_second=tps, failed_over=len(tried) > 1, attempts=len(tried),
            backends=tuple(tried), queue_wait_ms=waited_s * 1000,
        )

    # ---- embeddings ------------------------------------------------------------------------

    async def embed(self, model: str, inputs: list[str], claim: Claim | None = None) -> EmbedResult:
        model = self.resolve(model)
        claim = claim or Claim.of_caller()
        tried: list[str] = []
        unsupported: dict[str, str] = {}
        while True:
            failure: BackendFailure | None = None
            try:
                ticket = self.admission.enter(model, claim, avoid=frozenset(tried), never=frozenset(unsupported),
                                              urgent=bool(tried))
            except Unavailable:
                if unsupported:
                    reasons = "; ".join(f"{name}: {why}" for name, why in unsupported.items())
                    raise Unimplemented(f"no backend serving {model!r} supports embeddings ({reasons})") from None
                raise
            with ticket:
                async for _ in ticket.wait():
                    pass  # a unary call just waits
                backend = ticket.backend
                tried.append(backend.name)
                try:
                    path, body = backend.protocol.embed_request(model, inputs)
                    async with self._guarded(backend, model):
                        doc = await self.transport.post_json(backend, path, body)
                        try:
                            vectors, prompt_tokens = backend.protocol.embed_result(doc)
                        except (KeyError, TypeError):
                            raise BackendFailure(backend.name, "malformed embeddings response") from None
                    self.metrics.prompt_tokens.labels(model, backend.name).inc(prompt_tokens)
                    return EmbedResult(model, backend.name, tuple(tuple(v) for v in vectors), prompt_tokens)
                except Unsupported as exc:
                    unsupported[exc.backend] = exc.message[:200]
                except BackendFailure as exc:
                    failure = exc
            if failure is not None:
                if len(tried) >= self.settings.max_attempts:
                    raise Unavailable(f"embedding with {model!r} failed on {tried}: {failure.reason}") from None
                await asyncio.sleep(self.settings.backoff_s * 2 ** (len(tried) - 1))

    # ---- introspection ---------------------------------------------------------------------

    def models(self) -> list[tuple[str, list[str], list[str], list[str], Capabilities]]:
        """(model, backends serving it, backends with it loaded, aliases, capabilities)."""
        out = []
        for model in self.pool.all_models():
            serving = [b for b in self.pool.backends if b.serves(model)]
            loaded = [b.name for b in self.pool.backends if b.has_loaded(model)]
            aliases = self.routes.aliases_of(model)
            caps = merge(b.capabilities_of(model) for b in serving)
            out.append((model, [b.name for b in serving], loaded, aliases, caps))
        return out

    def _publish_backend_gauges(self) -> None:
        for b in self.pool.backends:
            self.metrics.in_flight.labels(b.name).set(b.in_flight)
            self.metrics.healthy.labels(b.name).set(1 if b.healthy else 0)
            self.metrics.circuit_open.labels(b.name).set(0 if b.breaker.allows() else 1)
