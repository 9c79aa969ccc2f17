"""The response cache in a real inference service over a real simulator: a deterministic request
asked again is replayed (same events, `cached: true`, no backend call, no token budget), the
cache modes and header, expiry, what is never stored, a judge asked twice, and one cache shared
by two replicas through a real redis-server."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import grpc
import pytest
from prometheus_client import CollectorRegistry

from llmmesh.common.cache_mode import CACHE_HEADER
from llmmesh.common.model_call import ModelCall, Sampling, ToolDef
from llmmesh.common.v1 import common_pb2
from llmmesh.inference.cache import cache_key
from llmmesh.inference.v1 import inference_service_pb2 as pb
from llmmesh.judge.v1 import judge_service_pb2 as judge_pb
from llmmesh.judge.v1 import judge_service_pb2_grpc as judge_grpc
from llmmesh.settings import AuthSettings, CacheSettings, Settings, SharedStateSettings
from llmmesh.simulator.config import ScriptRule
from tests.support.inproc import inproc_mesh
from tests.support.keys import KeySpec, bearer, write_keys
from tests.support.redis_proc import RedisServer
from tests.support.rpc import collect, drain, violations
from tests.support.sims import cancelled, eventually, sim, stats

GREEDY = common_pb2.GenerationOptions(temperature=0, max_tokens=8)
WEATHER = ScriptRule(match="weather", tool_calls=({"function": {"name": "get_weather",
                                                                "arguments": {"city": "Paris"}}},))


def generate(prompt: str = "Why is the sky blue?", options: common_pb2.GenerationOptions = GREEDY,
             **fields: Any) -> pb.GenerateRequest:
    return pb.GenerateRequest(model="m", prompt=prompt, options=options, **fields)


def events_of(responses: list[Any]) -> list[tuple[str, Any]]:
    """The events without their timings: what a replay must repeat exactly. A run of deltas counts
    as its joined text: how many messages carry it is the relay's (it joins the deltas queued
    behind a lagging reader, and a replay arrives all at once)."""
    out: list[tuple[str, Any]] = []
    for r in responses:
        kind = r.WhichOneof("event")
        if kind == "delta":
            if out and out[-1][0] == "delta":
                out[-1] = ("delta", out[-1][1] + r.delta.text)
            else:
                out.append(("delta", r.delta.text))
        elif kind == "tool_calls":
            out.append(("tool_calls", str(r.tool_calls)))
        elif kind == "done":
            d = r.done
            out.append(("done", (d.model, d.done_reason, d.prompt_tokens, d.output_tokens)))
    return out


async def started(mesh: Any) -> int:
    return (await stats(mesh.sims[0]))["started"]


def sample(registry: CollectorRegistry, name: str) -> float:
    return registry.get_sample_value(f"llmmesh_cache_{name}_total", {"model": "m"}) or 0.0


async def test_a_hit_replays_the_same_events_marked_cached_without_a_backend(inference_mesh, registry) -> None:
    async with inference_mesh(sim(WEATHER)) as m:
        first = await collect(m.stub.Generate(generate()))
        again = await collect(m.stub.Generate(generate()))
        turn = pb.ChatTurn(model="m", options=GREEDY, tools=[pb.Tool(name="get_weather")],
                           messages=[pb.Message(role=pb.ROLE_USER, content="The weather in Paris?")])
        chats = [await collect(m.stub.Chat(iter([pb.ChatRequest(turn=turn)]))) for _ in range(2)]
        assert await started(m) == 2  # one generate, one chat: the repeats never reached the backend
        # The key holds the model's digest as the backend lists it (/api/tags).
        engine = m.server.servicers["llmmesh.inference.v1.InferenceService"].engine
        assert engine.inventory.digests("m") == (hashlib.sha256(b"m:latest").hexdigest(),)
    assert events_of(again) == events_of(first)
    (_, text), (_, (_, reason, _, output_tokens)) = events_of(first)
    assert text.strip() and (reason, output_tokens) == ("length", GREEDY.max_tokens)
    assert (first[-1].done.cached, again[-1].done.cached) == (False, True)
    assert first[-1].done.backend == "a" and again[-1].done.backend == "" and not again[-1].done.backends
    assert [e.WhichOneof("event") for e in chats[0]] == ["tool_calls", "done"]
    assert events_of(chats[1]) == events_of(chats[0]) and chats[1][-1].done.cached
    assert (sample(registry, "hits"), sample(registry, "misses"), sample(registry, "stores")) == (2, 2, 2)


async def test_only_deterministic_requests_are_cached(inference_mesh) -> None:
    sampled = common_pb2.GenerationOptions(temperature=0.8, max_tokens=8)
    seeded = common_pb2.GenerationOptions(temperature=0.8, seed=7, max_tokens=8)
    async with inference_mesh(sim()) as m:
        unset = [await collect(m.stub.Generate(generate(options=common_pb2.GenerationOptions(max_tokens=8))))
                 for _ in range(2)]
        hot = [await collect(m.stub.Generate(generate(options=sampled))) for _ in range(2)]
        seed = [await collect(m.stub.Generate(generate(options=seeded))) for _ in range(2)]
        assert await started(m) == 5
    assert not any(r[-1].done.cached for r in (*unset, *hot))
    assert [r[-1].done.cached for r in seed] == [False, True]


async def test_bypass_and_refresh_by_field_and_header(inference_mesh) -> None:
    rules = (ScriptRule(match="Q", response="first answer", times=1), ScriptRule(match="Q", response="second answer"))

    async def text(**fields: Any) -> tuple[str, bool]:
        metadata = fields.pop("metadata", None)
        events = await collect(m.stub.Generate(generate("Q", **fields), metadata=metadata))
        return "".join(e.delta.text for e in events if e.HasField("delta")), events[-1].done.cached

    async with inference_mesh(sim(*rules)) as m:
        assert await text() == ("first answer", False)
        assert await text(cache=common_pb2.CACHE_MODE_BYPASS) == ("second answer", False)
        assert await text() == ("first answer", True)  # a bypass neither reads nor writes
        assert await text(metadata=((CACHE_HEADER, "bypass"),)) == ("second answer", False)
        assert await text(cache=common_pb2.CACHE_MODE_REFRESH) == ("second answer", False)
        assert await text() == ("second answer", True)  # the refresh stored its answer
        assert await text(metadata=((CACHE_HEADER, "Refresh"),)) == ("second answer", False)
        # The field wins over the header.
        assert await text(cache=common_pb2.CACHE_MODE_USE, metadata=((CACHE_HEADER, "bypass"),)) == (
            "second answer", True)
        assert await started(m) == 5
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await text(metadata=((CACHE_HEADER, "sometimes"),))
        with pytest.raises(grpc.aio.AioRpcError) as field_err:
            await text(cache=9)
    assert "use, bypass or refresh" in violations(err.value)[CACHE_HEADER]
    assert set(violations(field_err.value)) == {"cache"}


async def test_entries_expire_after_their_time_to_live(inference_mesh) -> None:
    async with inference_mesh(sim(), cache=CacheSettings(ttl_s=0.3)) as m:
        assert not (await collect(m.stub.Generate(generate())))[-1].done.cached
        assert (await collect(m.stub.Generate(generate())))[-1].done.cached
        await asyncio.sleep(0.6)
        assert not (await collect(m.stub.Generate(generate())))[-1].done.cached
        assert await started(m) == 2


async def test_failed_and_cancelled_generations_are_not_stored(inference_mesh, registry) -> None:
    rules = (ScriptRule(match="broken", response="one two three four five", fault="fail_at_chunk=3", times=1),
             ScriptRule(match="broken", response="one two three four five"))
    async with inference_mesh(sim(*rules, token_delay_s=0.02), max_attempts=1) as m:
        _, err = await drain(m.stub.Generate(generate("broken")))
        assert err is not None and err.code() == grpc.StatusCode.UNAVAILABLE
        assert [(await collect(m.stub.Generate(generate("broken"))))[-1].done.cached for _ in range(2)] == [
            False, True]

        call = m.stub.Generate(generate("cut short", common_pb2.GenerationOptions(temperature=0, max_tokens=30)))
        await call.read()
        await call.read()
        call.cancel()
        await eventually(lambda: cancelled(m.sims[0]), timeout_s=5)
        again = await collect(m.stub.Generate(generate("cut short",
                                                       common_pb2.GenerationOptions(temperature=0, max_tokens=30))))
        assert not again[-1].done.cached and again[-1].done.output_tokens == 30
    assert sample(registry, "stores") == 2  # "broken" once it worked, "cut short" once it finished


async def test_a_hit_costs_no_token_budget(settings: Settings, registry: CollectorRegistry, tmp_path: Path) -> None:
    keys = write_keys(tmp_path / "keys.json", team=KeySpec(("*",), {"tokens_per_day": 10}))
    secured = dataclasses.replace(settings, auth=AuthSettings(api_keys_file=str(tmp_path / "keys.json")))
    async with inproc_mesh(secured, registry, sim()) as m:
        as_team = bearer(keys["team"])
        first = await collect(m.stub.Generate(generate(), metadata=as_team))
        assert first[-1].done.prompt_tokens + first[-1].done.output_tokens > 10  # the budget is in debt now
        again = await collect(m.stub.Generate(generate(), metadata=as_team))
        assert again[-1].done.cached and events_of(again) == events_of(first)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await collect(m.stub.Generate(generate("Another question"), metadata=as_team))
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "tokens_per_day" in err.value.details()


async def test_in_process_entries_are_evicted_least_recently_used_first(inference_mesh, registry) -> None:
    async with inference_mesh(sim(), cache=CacheSettings(max_entries=2)) as m:
        for prompt in ("one", "two", "one", "three", "one", "two"):
            await collect(m.stub.Generate(generate(prompt)))
        assert await started(m) == 4  # one, two, three, then two again (it was evicted for three)
    assert registry.get_sample_value("llmmesh_cache_evictions_total") == 2


async def test_a_second_identical_judge_call_is_served_from_the_cache(inference_mesh, registry) -> None:
    verdict = {"reasoning": "It names the capital, as asked.", "score": 5}
    async with inference_mesh(sim(ScriptRule(match="Criterion:", response=json.dumps(verdict)), models=("m",)),
                              services=("inference", "judge")) as m:
        judge = judge_grpc.JudgeServiceStub(m.channel)
        request = judge_pb.EvaluateRequest(question="What is the capital of France?", answer="Paris.", model="m",
                                           judge_type="factual")
        first = await judge.Evaluate(request, timeout=30)
        calls = await started(m)
        again = await judge.Evaluate(request, timeout=30)
        assert await started(m) == calls  # the judge's model calls were all answered from the cache
        # The caller's cache header is passed on with the judge's model calls.
        await judge.Evaluate(request, timeout=30, metadata=((CACHE_HEADER, "bypass"),))
        assert await started(m) == 2 * calls
    # The judge samples greedily (temperature 0): every model call it made was a hit the second time.
    assert sample(registry, "hits") == sample(registry, "stores") == calls >= 1
    assert (again.verdict, again.score, again.reasoning) == (first.verdict, first.score, first.reasoning)
    assert (again.usage.prompt_tokens, again.usage.output_tokens, again.usage.model_calls) == (
        first.usage.prompt_tokens, first.usage.output_tokens, first.usage.model_calls)


async def test_replicas_share_one_cache_in_redis(settings: Settings, redis_server: RedisServer) -> None:
    shared = SharedStateSettings(redis_url=redis_server.url)
    registries = [CollectorRegistry(), CollectorRegistry()]
    async with inproc_mesh(settings, registries[0], sim(), shared_state=shared) as one, \
            inproc_mesh(settings, registries[1], sim(), shared_state=shared) as two:
        first = await collect(one.stub.Generate(generate()))
        again = await collect(two.stub.Generate(generate()))
        assert (await stats(one.sims[0]))["started"] == 1 and (await stats(two.sims[0]))["started"] == 0
    assert again[-1].done.cached and events_of(again) == events_of(first)
    with redis_server.client() as c:
        (key,) = c.keys("llmmesh:blob:response:*")
        assert 3500 < c.ttl(key) <= 3600
    assert sample(registries[1], "hits") == 1 and sample(registries[0], "stores") == 1


def test_the_key_covers_what_decides_the_answer_and_nothing_else() -> None:
    base = ModelCall(model="m", prompt="p", system="s", sampling=Sampling(temperature=0, max_tokens=8),
                     json_schema={"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "number"}}},
                     tools=(ToolDef("t", "d", {"type": "object"}),))
    key = cache_key(base, ("sha256:1",))
    assert key == cache_key(dataclasses.replace(base), ("sha256:1", "sha256:1"))
    reordered = {"properties": {"b": {"type": "number"}, "a": {"type": "string"}}, "type": "object"}
    assert key == cache_key(dataclasses.replace(base, json_schema=reordered), ("sha256:1",))
    changed = [
        dataclasses.replace(base, model="m2"), dataclasses.replace(base, prompt="q"),
        dataclasses.replace(base, system=""), dataclasses.replace(base, json_schema=None),
        dataclasses.replace(base, tools=()), dataclasses.replace(base, sampling=Sampling(temperature=0, max_tokens=9)),
        dataclasses.replace(base, sampling=Sampling(temperature=0, max_tokens=8, seed=1)),
    ]
    assert len({key, *(cache_key(c, ("sha256:1",)) for c in changed)}) == len(changed) + 1
    assert cache_key(base, ("sha256:2",)) != key  # the model was pulled again
