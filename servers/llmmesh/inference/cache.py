"""The response cache: a deterministic request asked again is answered from what it got before.

**What is cached.** Only deterministic requests (temperature 0, or an explicit seed), whose
generation ended complete and well (done_reason stop, length or tool_calls): a failed or cancelled
generation, or one interrupted by the caller, is never stored.

**The key** is a SHA-256 of everything that decides the answer: the resolved model (an alias and
the default model resolve first) with the digests its backends report (Ollama's /api/tags; a model
pulled again gets a new digest, so its old answers are not replayed), the prompt, system text and
messages, every sampling option, the JSON schema and the tools. Never the API key: the cache is
global, so two callers asking the same deterministic question share one answer (and one model
call). That is the point of it; it also means a caller who can guess another's exact request can
read its cached answer (only its answer: nothing else of the other caller's).

**A hit** replays the same events (text deltas, tool calls) at once, then a GenerationDone with
`cached: true`, the original model, done_reason and token counts, no backend, and the replay's own
timings. It costs no token budget: it is served outside the budget's metering (the request rate
still counts the RPC).

**Control** per request: the `cache` field, or the `x-llmmesh-cache` header (use, bypass,
refresh). **Where**: the shared state (llmmesh.framework.shared_state), an in-process LRU bounded
in entries and bytes by default, Redis with LLMMESH_REDIS_URL (shared by every replica). Entries
expire after LLMMESH_CACHE_TTL_S.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from llmmesh.common.cache_mode import CacheMode
from llmmesh.common.model_call import (
    Finished,
    GenerationEvent,
    GenerationStats,
    ModelCall,
    TextDelta,
    ToolCallData,
    ToolCalls,
)
from llmmesh.framework.shared_state import SharedState
from llmmesh.settings import CacheSettings

# Bumped when the key's inputs or the stored format change: old entries then simply miss.
FORMAT = 1
STORED_REASONS = frozenset({"stop", "length", "tool_calls"})

Replayed = TextDelta | ToolCalls


@dataclass(frozen=True)
class CacheMetrics:
    """Hit ratio = hits / (hits + misses). `model` takes resolved names from the backends'
    inventories only (an unknown model is NOT_FOUND before the cache is asked)."""

    hits: Counter
    misses: Counter
    stores: Counter
    evictions: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry | None) -> CacheMetrics:
        def counter(name: str, doc: str, labels: tuple[str, ...] = ("model",)) -> Counter:
            return Counter(f"llmmesh_cache_{name}_total", doc, labels, registry=registry)

        return cls(hits=counter("hits", "Deterministic requests answered from the response cache."),
                   misses=counter("misses", "Deterministic requests the response cache could not answer."),
                   stores=counter("stores", "Complete generations stored in the response cache."),
                   evictions=counter("evictions", "In-process cache entries evicted for room (LRU).", ()))


def deterministic(call: ModelCall) -> bool:
    """Greedy decoding, or a seed that fixes the sampling: the same request gets the same answer."""
    return call.sampling.temperature == 0 or call.sampling.seed is not None


def cache_key(call: ModelCall, digests: Sequence[str]) -> str:
    """`call` must name the resolved model. The fields are named one by one: whatever else a call
    carries (routing, priority) does not change the answer. JSON with sorted keys makes equal
    requests equal text."""
    doc = {"format": FORMAT, "model": call.model, "digests": sorted(set(digests)), "prompt": call.prompt,
           "system": call.system, "messages": [dataclasses.asdict(m) for m in call.messages],
           "sampling": dataclasses.asdict(call.sampling), "json_schema": call.json_schema,
           "tools": [dataclasses.asdict(t) for t in call.tools]}
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return "response:" + hashlib.sha256(text.encode()).hexdigest()


def encode(events: Sequence[Replayed], stats: GenerationStats) -> bytes:
    out: list[Any] = []
    for e in events:
        if isinstance(e, TextDelta):
            out.append(e.text)
        else:
            out.append([{"id": c.id, "name": c.name, "arguments": c.arguments} for c in e.calls])
    done = {"model": stats.model, "done_reason": stats.done_reason, "prompt_tokens": stats.prompt_tokens,
            "output_tokens": stats.output_tokens}
    return json.dumps({"events": out, "done": done}, separators=(",", ":"), ensure_ascii=False).encode()


def decode(blob: bytes) -> tuple[list[Replayed], dict[str, Any]] | None:
    """The stored events and final counts; None for anything unreadable (it then counts as a miss)."""
    try:
        doc = json.loads(blob)
        events: list[Replayed] = [
            TextDelta(e) if isinstance(e, str)
            else ToolCalls(tuple(ToolCallData(c["id"], c["name"], c["arguments"]) for c in e))
            for e in doc["events"]]
        done = doc["done"]
        return events, {k: done[k] for k in ("model", "done_reason", "prompt_tokens", "output_tokens")}
    except (ValueError, KeyError, TypeError):
        return None


class ResponseCache:
    def __init__(self, state: SharedState, settings: CacheSettings, metrics: CacheMetrics,
                 resolve: Callable[[str], str], digests: Callable[[str], tuple[str, ...]],
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self._state = state
        self._ttl_s = settings.ttl_s
        self._metrics = metrics
        # The engine's model resolution (alias, default) and its backends' digests of a model.
        self._resolve, self._digests = resolve, digests
        self._clock = clock

    @staticmethod
    def applies(call: ModelCall, mode: CacheMode) -> bool:
        """Whether `call` is answered through the cache at all (else it goes straight to the model,
        with nothing in between per token)."""
        return mode is not CacheMode.BYPASS and deterministic(call)

    async def serve(self, call: ModelCall, mode: CacheMode,
                    generate: Callable[[ModelCall], AsyncIterator[GenerationEvent]]) -> AsyncIterator[GenerationEvent]:
        """The events of `generate(call)`, or of its cached answer, for a call the cache `applies` to."""
        started = self._clock()
        call = dataclasses.replace(call, model=self._resolve(call.model))
        key = cache_key(call, self._digests(call.model))
        if mode is CacheMode.USE:
            blob = await self._state.blob_get(key)
            found = decode(blob) if blob is not None else None
            if found is not None:
                self._metrics.hits.labels(call.model).inc()
                async for event in self._replay(*found, started):
                    yield event
                return
            self._metrics.misses.labels(call.model).inc()
        kept: list[Replayed] = []
        async with aclosing(generate(call)) as events:
            async for event in events:
                if isinstance(event, TextDelta | ToolCalls):
                    kept.append(event)
                elif isinstance(event, Finished) and event.stats.done_reason in STORED_REASONS:
                    # Before the final event goes out: a caller that stops reading after it still
                    # leaves the answer stored.
                    evicted = await self._state.blob_put(key, encode(kept, event.stats), self._ttl_s)
                    self._metrics.stores.labels(call.model).inc()
                    self._metrics.evictions.inc(evicted)
                yield event

    async def _replay(self, events: list[Replayed], done: dict[str, Any], started: float) -> AsyncIterator[
            GenerationEvent]:
        first: float | None = None
        for event in events:
            if first is None:
                first = self._clock()
            yield event
        now = self._clock()
        yield Finished(GenerationStats(
            model=done["model"], backend="", done_reason=done["done_reason"], prompt_tokens=done["prompt_tokens"],
            output_tokens=done["output_tokens"],
            time_to_first_token_ms=((first or now) - started) * 1000, total_ms=(now - started) * 1000,
            tokens_per_second=0.0, failed_over=False, attempts=0, backends=(), cached=True))
