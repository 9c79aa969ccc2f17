"""Model calls with routing, failover and accounting — plain asyncio, no gRPC.

A generation tries backends chosen by the pool. A failure before the first token simply moves to
another backend after a backoff. A failure mid-stream continues on another backend from the text
already delivered (sent as an assistant prefix), so the caller sees one uninterrupted stream whose
final stats record the failover. Cancellation needs no code here: cancelling the consuming task
unwinds the `async with` around the backend response, which closes the HTTP connection.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import aclosing, asynccontextmanager
from dataclasses import replace

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
from llmmesh.framework.errors import TOOLS_UNSUPPORTED, FieldViolation, InvalidArgument, Unavailable, Unimplemented
from llmmesh.inference.capabilities import Capabilities, merge, refuses_tools
from llmmesh.inference.failures import BackendFailure, BackendRejected, ModelMissing, Unsupported
from llmmesh.inference.inventory import InventoryRefresher
from llmmesh.inference.metrics import InferenceMetrics
from llmmesh.inference.pool import Backend, BackendPool, make_backend
from llmmesh.inference.transport import Transport
from llmmesh.settings import InferenceSettings

log = logging.getLogger("llmmesh.inference")


class InferenceEngine:
    def __init__(self, settings: InferenceSettings, metrics: InferenceMetrics,
                 transport: Transport | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        configs = parse_backends(settings.backends)
        backends = [make_backend(c, settings.breaker_failures, settings.breaker_open_s) for c in configs]
        self.pool = BackendPool(backends, settings.max_inflight_per_backend)
        self.aliases = dict(settings.aliases)
        # `transport` is the seam for unit tests: a fake in place of HTTP.
        self.transport = transport or Transport(
            settings.egress_url, settings.connect_timeout_s, settings.idle_timeout_s,
            max_connections=max(1, len(backends)) * settings.max_inflight_per_backend)
        self.inventory = InventoryRefresher(self.transport, backends, settings.inventory_refresh_s,
                                            timeout_s=settings.connect_timeout_s + 1.0)

    async def start(self) -> None:
        await self.inventory.start()
        self._publish_backend_gauges()

    async def close(self) -> None:
        await self.inventory.stop()
        await self.transport.close()

    # ---- models ----------------------------------------------------------------------------

    def default_model(self) -> str:
        """The configured default (alias resolved), else the first model any backend lists."""
        if self.settings.default_model:
            return self.aliases.get(self.settings.default_model, self.settings.default_model)
        models = self.pool.all_models()
        return models[0] if models else ""

    def resolve(self, model: str) -> str:
        """Alias or empty (the default) → a model name the pool knows; NOT_FOUND otherwise."""
        model = self.aliases.get(model, model) if model else self.default_model()
        if not self.pool.known(model):
            # Raises NotFound listing what is available.
            self.pool.pick(model)
        return model

    # ---- generation ------------------------------------------------------------------------

    async def generate(self, call: ModelCall) -> AsyncIterator[GenerationEvent]:
        model = self.resolve(call.model)
        call = replace(call, model=model)
        started = time.perf_counter()
        first_token_at: float | None = None
        produced: list[str] = []
        tried: list[str] = []
        while True:
            backend = self._pick(model, tried)
            tried.append(backend.name)
            prefix = "".join(produced)
            attempt_call = self._continuation(call, len(produced)) if prefix else call
            done: BackendDone | None = None
            try:
                # Run the attempt to its natural end (never leave it suspended): only then does its
                # guard record the success and release the backend.
                async with aclosing(self._attempt(backend, attempt_call, prefix)) as attempt:
                    async for event in attempt:
                        if isinstance(event, TextDelta):
                            if first_token_at is None:
                                first_token_at = time.perf_counter()
                                self.metrics.ttft.labels(model, backend.name).observe(first_token_at - started)
                            produced.append(event.text)
                            yield event
                        elif isinstance(event, ToolCalls):
                            yield event
                        else:
                            done = event
            except BackendFailure as failure:
                self.metrics.failovers.labels(model, backend.name).inc()
                log.warning("backend attempt failed", extra={
                    "backend": backend.name, "model": model, "reason": failure.reason,
                    "tokens_delivered": len(produced), "attempt": len(tried)})
                if len(tried) >= self.settings.max_attempts:
                    raise Unavailable(f"model {model!r}: {len(tried)} attempts failed; last: {failure.reason}",
                                      retry_after_s=1.0) from None
                await asyncio.sleep(self.settings.backoff_s * 2 ** (len(tried) - 1))
                continue
            assert done is not None, "protocol adapters end every attempt with BackendDone or raise"
            yield Finished(self._stats(model, backend, done, tried, produced, started, first_token_at))
            return

    def _pick(self, model: str, tried: list[str], never: frozenset[str] = frozenset()) -> Backend:
        try:
            return self.pool.pick(model, exclude=set(tried) | never)
        except Unavailable:
            if not tried:
                raise
            # Every other backend is down: the one that failed may still be worth a retry.
            return self.pool.pick(model, exclude=set(never))

    def _continuation(self, call: ModelCall, tokens_done: int) -> ModelCall:
        max_tokens = call.sampling.max_tokens
        if max_tokens is not None:
            max_tokens = max(1, max_tokens - tokens_done)
        return replace(call, sampling=replace(call.sampling, max_tokens=max_tokens))

    async def _attempt(self, backend: Backend, call: ModelCall, prefix: str) -> AsyncIterator[
            TextDelta | ToolCalls | BackendDone]:
        path, body = backend.protocol.request(call, prefix)
        async with self._guarded(backend, call.model):
            async with self.transport.stream(backend, path, body) as lines:
                async for event in backend.protocol.events(backend.name, lines):
                    yield event

    @asynccontextmanager
    async def _guarded(self, backend: Backend, model: str) -> AsyncIterator[None]:
        """In-flight accounting and the breaker verdict for one backend attempt."""
        backend.in_flight += 1
        backend.breaker.on_attempt()
        self.metrics.in_flight.labels(backend.name).set(backend.in_flight)
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
            backend.in_flight -= 1
            if healthy is True:
                backend.breaker.on_success()
            elif healthy is False:
                backend.breaker.on_failure()
            else:
                backend.breaker.on_abandon()
            self._publish_backend_gauges()

    def _stats(self, model: str, backend: Backend, done: BackendDone, tried: list[str], produced: list[str],
               started: float, first_token_at: float | None) -> GenerationStats:
        now = time.perf_counter()
        total = now - started
        output_tokens = done.output_tokens or len(produced)
        if len(tried) > 1 and done.output_tokens:
            output_tokens = len(produced)  # counts from the last backend miss the continued prefix
        decode_s = now - first_token_at if first_token_at is not None else 0.0
        tps = output_tokens / decode_s if decode_s > 0 else 0.0
        self.metrics.latency.labels(model, backend.name).observe(total)
        self.metrics.output_tokens.labels(model, backend.name).inc(output_tokens)
        if tps:
            self.metrics.tokens_per_second.labels(model, backend.name).observe(tps)
        return GenerationStats(
            model=model, backend=backend.name, done_reason=done.done_reason, prompt_tokens=done.prompt_tokens,
            output_tokens=output_tokens,
            time_to_first_token_ms=(first_token_at - started) * 1000 if first_token_at is not None else 0.0,
            total_ms=total * 1000, tokens_per_second=tps, failed_over=len(tried) > 1, attempts=len(tried),
            backends=tuple(tried),
        )

    # ---- embeddings ------------------------------------------------------------------------

    async def embed(self, model: str, inputs: list[str]) -> EmbedResult:
        model = self.resolve(model)
        tried: list[str] = []
        unsupported: dict[str, str] = {}
        while True:
            try:
                backend = self._pick(model, tried, frozenset(unsupported))
            except Unavailable:
                if unsupported:
                    reasons = "; ".join(f"{name}: {why}" for name, why in unsupported.items())
                    raise Unimplemented(f"no backend serving {model!r} supports embeddings ({reasons})") from None
                raise
            tried.append(backend.name)
            path, body = backend.protocol.embed_request(model, inputs)
            try:
                async with self._guarded(backend, model):
                    doc = await self.transport.post_json(backend, path, body)
                    try:
                        vectors, prompt_tokens = backend.protocol.embed_result(doc)
                    except (KeyError, TypeError):
                        raise BackendFailure(backend.name, "malformed embeddings response") from None
                return EmbedResult(model, backend.name, tuple(tuple(v) for v in vectors), prompt_tokens)
            except Unsupported as exc:
                unsupported[exc.backend] = exc.message[:200]
            except BackendFailure as failure:
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
            aliases = sorted(a for a, target in self.aliases.items() if model in (target, f"{target}:latest"))
            caps = merge(b.capabilities_of(model) for b in serving)
            out.append((model, [b.name for b in serving], loaded, aliases, caps))
        return out

    def _publish_backend_gauges(self) -> None:
        for b in self.pool.backends:
            self.metrics.in_flight.labels(b.name).set(b.in_flight)
            self.metrics.healthy.labels(b.name).set(1 if b.healthy else 0)
            self.metrics.circuit_open.labels(b.name).set(0 if b.breaker.allows() else 1)
