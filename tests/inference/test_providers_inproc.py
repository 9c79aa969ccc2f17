"""Providers through the real inference service over real simulators: a stream broken mid-way reads
as one on every kind of backend (one that continues, one that echoes, one that needs vLLM's flag,
Anthropic's API), an OpenAI backend that needs a key gets it and never shows it, an API under a
path prefix, and model routes seen in ListModels."""

from __future__ import annotations

import dataclasses

import grpc
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from llmmesh.common.model_call import Finished, ModelCall, TextDelta
from llmmesh.inference.engine import InferenceEngine
from llmmesh.inference.metrics import InferenceMetrics
from llmmesh.inference.v1 import inference_service_pb2 as pb
from llmmesh.settings import InferenceSettings
from llmmesh.simulator.app import create_app
from llmmesh.simulator.config import ScriptRule, SimulatorConfig
from tests.support.rpc import collect
from tests.support.sims import set_fault, stats

PROMPT = "Tell me about Paris"
RESPONSE = ("Paris, the capital of France, is famous for its museums, its food and the river Seine that runs "
            "through it from east to west.")
# Whichever instance answers first drops the stream after four tokens; the continuation, a new
# request, is not the rule's answer (target "last" no longer matches, or the continuing simulator
# leaves the rule's fault out), so another backend finishes it.
FAILING = ScriptRule(match=PROMPT, target="last", response=RESPONSE, fault="drop_after=4")


def text_of(events: list[pb.GenerateResponse]) -> str:
    return "".join(e.delta.text for e in events if e.WhichOneof("event") == "delta")


def sims(continuation: str, *rules: ScriptRule, **config) -> tuple[SimulatorConfig, SimulatorConfig]:
    return tuple(SimulatorConfig(name=n, models=("m",), scripts=rules or (FAILING,), continuation=continuation,
                                 **config) for n in ("a", "b"))  # type: ignore[return-value]


@pytest.mark.parametrize(("protocol", "continuation", "learned"), [
    ("", "continue", "continue"),  # Ollama
    ("#openai", "echo", "echo"),  # llama.cpp: says `owned_by: llamacpp`, echoes the prefix
    ("#openai", "flag", "flag"),  # vLLM: says `owned_by: vllm`, continues only when asked
    ("#anthropic", "continue", "continue"),  # Anthropic: continues a prefill
])
async def test_a_stream_broken_mid_way_reads_as_one_on_every_kind_of_backend(
        inference_mesh, protocol: str, continuation: str, learned: str) -> None:
    async with inference_mesh(*sims(continuation), backend_options={"a": protocol, "b": protocol}) as m:
        events = await collect(m.stub.Generate(pb.GenerateRequest(model="m", prompt=PROMPT)))
        backends = await m.stub.ListBackends(pb.ListBackendsRequest())
    done = events[-1].done
    assert done.failed_over and len(done.backends) == 2
    assert text_of(events) == RESPONSE
    assert {b.continuation for b in backends.backends} == {learned}


async def test_a_server_that_ignores_the_prefix_is_caught(inference_mesh) -> None:
    # The control: a server answering the continuation afresh breaks the text, which the test sees.
    async with inference_mesh(*sims("ignore"), backend_options={"a": "#openai", "b": "#openai"}) as m:
        events = await collect(m.stub.Generate(pb.GenerateRequest(model="m", prompt=PROMPT)))
    assert events[-1].done.failed_over and text_of(events) != RESPONSE


async def test_an_openai_stream_continues_on_anthropic(inference_mesh, monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo: an OpenAI-shaped backend fails mid-answer; an Anthropic-shaped one, another API and
    another key, finishes it. Each simulator demands its own key."""
    monkeypatch.setenv("OAI_KEY", "sk-oai-1")
    monkeypatch.setenv("ANT_KEY", "sk-ant-2")
    rule = ScriptRule(match=PROMPT, response=RESPONSE)
    oai = SimulatorConfig(name="oai", models=("m",), scripts=(rule,), api_key="sk-oai-1")
    claude = SimulatorConfig(name="claude", models=("m",), scripts=(rule,), api_key="sk-ant-2",
                             continuation="continue")
    options = {"oai": ";api_key_env=OAI_KEY", "claude": "#anthropic;api_key_env=ANT_KEY"}
    async with inference_mesh(oai, claude, backend_options=options) as m:
        await set_fault(m.sims[0], "drop_after=4,times=1")
        # The router spreads requests; within two, one starts on the OpenAI backend and fails there.
        runs = [await collect(m.stub.Generate(pb.GenerateRequest(model="m", prompt=PROMPT))) for _ in range(2)]
        claude_stats = await stats(m.sims[1])
    failed_over = [r for r in runs if r[-1].done.failed_over]
    assert len(failed_over) == 1 and list(failed_over[0][-1].done.backends) == ["oai", "claude"]
    assert all(text_of(r) == RESPONSE for r in runs)
    assert "/v1/messages" in claude_stats["endpoints"]


async def test_a_backend_needing_a_key_gets_it_and_a_wrong_key_never_shows(
        inference_mesh, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOD_KEY", "sk-good-123")
    monkeypatch.setenv("BAD_KEY", "sk-wrong-456")
    good = SimulatorConfig(name="good", models=("m",), api_key="sk-good-123")
    bad = SimulatorConfig(name="bad", models=("m",), api_key="sk-good-123")
    options = {"good": "#openai;api_key_env=GOOD_KEY", "bad": "#openai;api_key_env=BAD_KEY"}
    async with inference_mesh(good, bad, backend_options=options) as m:
        for _ in range(4):
            events = await collect(m.stub.Generate(pb.GenerateRequest(model="m", prompt="hi")))
            assert events[-1].done.backend == "good"
        listed = await m.stub.ListBackends(pb.ListBackendsRequest())
    by_name = {b.name: b for b in listed.backends}
    assert by_name["good"].health == pb.BACKEND_HEALTH_HEALTHY
    assert by_name["bad"].health == pb.BACKEND_HEALTH_UNHEALTHY
    # The simulator quotes the key it got, as OpenAI does: the mesh passes on no key, ever.
    assert "HTTP 401" in by_name["bad"].last_error and "[redacted]" in by_name["bad"].last_error
    assert "sk-" not in str(listed)


async def test_an_api_under_a_path_prefix_is_reached_there(monkeypatch: pytest.MonkeyPatch) -> None:
    # A proxy serving the OpenAI API under /engines/v1 (as Docker Model Runner does).
    monkeypatch.setenv("PROXY_KEY", "sk-proxy")
    proxy = web.Application()
    proxy.add_subapp("/engines", create_app(SimulatorConfig(name="proxied", models=("m",), api_key="sk-proxy")))
    runner = web.AppRunner(proxy)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    settings = dataclasses.replace(
        InferenceSettings(), backends=(f"p=http://127.0.0.1:{port}/engines/v1#openai;api_key_env=PROXY_KEY",))
    engine = InferenceEngine(settings, InferenceMetrics.create(CollectorRegistry()))
    try:
        await engine.start()
        assert engine.pool.backends[0].healthy and engine.pool.backends[0].models == {"m:latest"}
        events = [e async for e in engine.generate(ModelCall("m", prompt="hi"))]
    finally:
        await engine.close()
        await runner.cleanup()
    assert isinstance(events[-1], Finished) and events[-1].stats.backend == "p"
    assert len("".join(e.text for e in events if isinstance(e, TextDelta)).split()) == 32


async def test_routes_show_in_list_models_and_the_final_event_names_the_route(inference_mesh) -> None:
    async with inference_mesh(SimulatorConfig(name="a", models=("big", "small")),
                              aliases=(("chat", "big@90|small@10"), ("safe", "missing@100>small"))) as m:
        models = await m.stub.ListModels(pb.ListModelsRequest())
        events = await collect(m.stub.Generate(pb.GenerateRequest(model="safe", prompt="hi")))
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await m.stub.CompleteChat(pb.CompleteChatRequest(model="nope", messages=[
                pb.Message(role=pb.ROLE_USER, content="x")]))
    by_name = {i.name: i for i in models.models}
    assert list(by_name["big:latest"].aliases) == ["chat"]
    [small_route] = [r for r in by_name["small:latest"].routes if r.route == "chat"]
    assert (small_route.stage, small_route.weight, small_route.configured_weight, small_route.state) == (
        0, 10, 10, pb.ROUTE_TARGET_STATE_ACTIVE)
    done = events[-1].done
    assert (done.model, done.requested_model, list(done.fallback_from)) == ("small", "safe", ["missing"])
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
