"""Model routes: weighted targets (sticky per key when asked), fallback chains, and the canary guard
that shifts a worse canary's weight to 0 — on their own over a scripted generation, and in the engine
over a fake transport."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from prometheus_client import CollectorRegistry

from llmmesh.common.model_call import Finished, GenerationEvent, GenerationStats, ModelCall, TextDelta
from llmmesh.framework.errors import InvalidArgument, NotFound, Unavailable
from llmmesh.inference.failures import BackendFailure
from llmmesh.inference.metrics import InferenceMetrics
from llmmesh.inference.routes import GuardSettings, ModelRoutes, TargetState, parse_route
from tests.support.fake_transport import FakeTransport, fake_engine, ollama_lines

GUARD = GuardSettings(window_s=60.0, min_requests=10, max_error_rate=0.05, max_ttft_ratio=2.0)


@dataclass
class Scripted:
    """A generation per model: an error before any token, or text with a time to first token."""

    errors: dict[str, Exception]
    ttft_ms: dict[str, float]
    calls: list[str]

    async def generate(self, call: ModelCall) -> AsyncIterator[GenerationEvent]:
        self.calls.append(call.model)
        if call.model in self.errors:
            raise self.errors[call.model]
        yield TextDelta("hi")
        yield Finished(GenerationStats(call.model, "b", "stop", 1, 1, self.ttft_ms.get(call.model, 10.0), 20.0, 1.0,
                                       False, 1, ("b",), queue_wait_ms=1.0))


def routes(*aliases: tuple[str, str], registry: CollectorRegistry | None = None, seed: int = 1,
           clock=None) -> ModelRoutes:
    metrics = InferenceMetrics.create(registry or CollectorRegistry())
    return ModelRoutes(aliases, GUARD, metrics, rng=random.Random(seed), **({"clock": clock} if clock else {}))


async def serve(r: ModelRoutes, script: Scripted, name: str, key: str = "") -> GenerationStats:
    events = [e async for e in r.serve(ModelCall(name, prompt="hi"), key, script.generate)]
    assert isinstance(events[-1], Finished)
    return events[-1].stats


def test_route_syntax() -> None:
    route = parse_route("chat", "llama3.1:8b@90|llama3.2:3b@10>tiny;sticky")
    assert route.sticky and [[(t.model, t.weight) for t in s] for s in route.stages] == [
        [("llama3.1:8b", 90), ("llama3.2:3b", 10)], [("tiny", 100)]]
    assert route.primary.model == "llama3.1:8b" and route.routed
    assert not parse_route("fast", "smollm2:135m").routed  # a plain alias
    for bad in ("a@x", "a@0|b@0", "a|a", "@5", "a;shiny"):
        with pytest.raises(ValueError, match="model route 'r'"):
            parse_route("r", bad)


def test_aliases_resolve_as_before_and_routes_keep_their_name() -> None:
    r = routes(("fast", "smollm2:135m"), ("chat", "big@90|small@10"))
    assert (r.resolve("fast"), r.resolve("chat"), r.resolve("other")) == ("smollm2:135m", "chat", "other")
    assert r.aliases_of("smollm2:135m:latest") == ["fast"] and r.aliases_of("big") == ["chat"]
    assert r.aliases_of("small") == [] and [(n, s, t.model) for n, s, t in r.targets_of("small")] == [
        ("chat", 0, "small")]


async def test_weights_split_the_traffic() -> None:
    r = routes(("chat", "big@90|small@10"))
    script = Scripted({}, {}, [])
    for _ in range(1000):
        await serve(r, script, "chat")
    assert 60 <= script.calls.count("small") <= 140 and script.calls.count("big") + script.calls.count("small") == 1000


async def test_sticky_routes_give_one_key_one_version() -> None:
    r = routes(("chat", "big@50|small@50;sticky"))
    script = Scripted({}, {}, [])
    seen: dict[str, set[str]] = {}
    for i in range(200):
        key = f"key-{i % 20}"
        seen.setdefault(key, set()).add((await serve(r, script, "chat", key)).model)
    assert all(len(models) == 1 for models in seen.values())
    assert {m for models in seen.values() for m in models} == {"big", "small"}


async def test_the_next_stage_serves_when_the_model_cannot_and_the_final_event_says_so() -> None:
    registry = CollectorRegistry()
    r = routes(("big", "huge@100>medium>tiny"), registry=registry)
    script = Scripted({"huge": Unavailable("no healthy backend"), "medium": NotFound("model 'medium' not found")},
                      {}, [])
    stats = await serve(r, script, "big")
    assert (stats.model, stats.requested_model, stats.fallback_from) == ("tiny", "big", ("huge", "medium"))
    assert script.calls == ["huge", "medium", "tiny"]
    assert registry.get_sample_value("llmmesh_route_fallbacks_total", {"route": "big", "model": "tiny"}) == 1


async def test_a_callers_own_error_does_not_fall_back() -> None:
    r = routes(("big", "huge>tiny"))
    script = Scripted({"huge": InvalidArgument([], "bad schema")}, {}, [])
    with pytest.raises(InvalidArgument):
        await serve(r, script, "big")
    assert script.calls == ["huge"]


async def test_a_canary_erring_more_than_the_stable_target_is_ejected() -> None:
    registry = CollectorRegistry()
    r = routes(("chat", "stable@50|canary@50"), registry=registry)
    script = Scripted({"canary": Unavailable("broken build")}, {}, [])
    failures = 0
    for _ in range(60):
        try:
            await serve(r, script, "chat")
        except Unavailable:
            failures += 1
    assert failures == GUARD.min_requests  # ejected as soon as it had enough requests to judge
    canary = r._routes["chat"].stages[0][1]
    assert (canary.state, canary.weight) == (TargetState.EJECTED, 0) and "error rate 100%" in canary.reason
    assert registry.get_sample_value("llmmesh_route_canary_ejections_total", {"route": "chat", "model": "canary"}) == 1
    assert registry.get_sample_value("llmmesh_route_weight", {"route": "chat", "model": "canary"}) == 0
    assert script.calls[-20:] == ["stable"] * 20


async def test_a_canary_slow_to_first_token_is_ejected_and_a_healthy_one_is_not() -> None:
    r = routes(("slow", "stable@50|canary@50"), ("fine", "stable@50|canary2@50"))
    script = Scripted({}, {"stable": 100.0, "canary": 250.0, "canary2": 150.0}, [])
    for _ in range(100):
        await serve(r, script, "slow")
        await serve(r, script, "fine")
    slow, fine = r._routes["slow"].stages[0][1], r._routes["fine"].stages[0][1]
    assert slow.state is TargetState.EJECTED and "TTFT p50 249 ms vs 99 ms" in slow.reason  # queue wait excluded
    assert fine.state is TargetState.ACTIVE and fine.weight == 50


async def test_old_outcomes_leave_the_window() -> None:
    now = [0.0]
    r = routes(("chat", "stable@50|canary@50"), clock=lambda: now[0])
    script = Scripted({"canary": Unavailable("flaky")}, {}, [])
    errors = 0
    while errors < GUARD.min_requests - 1:  # errors just short of a verdict...
        try:
            await serve(r, script, "chat")
        except Unavailable:
            errors += 1
    now[0] = GUARD.window_s + 1  # ...then the window moves past them
    script.errors.clear()
    for _ in range(40):
        await serve(r, script, "chat")
    assert r._routes["chat"].stages[0][1].state is TargetState.ACTIVE


async def test_the_engine_falls_back_along_a_route_when_every_attempt_fails_before_a_token() -> None:
    down = BackendFailure("a", "HTTP 503: busy", status=503)
    transport = FakeTransport(streams={"a": [[down]], "b": [ollama_lines("small", " answer")]})
    engine = fake_engine(transport, "a", "b", aliases=(("big", "large@100>small"),))
    engine.pool.backends[0].models, engine.pool.backends[1].models = {"large"}, {"small"}
    events = [e async for e in engine.generate(ModelCall("big", prompt="hi"))]
    stats = events[-1].stats
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["small", " answer"]
    assert (stats.model, stats.backend, stats.requested_model, stats.fallback_from) == ("small", "b", "big",
                                                                                        ("large",))
    assert transport.streamed["a"] == 3  # every attempt on the large model's backend first
