"""The inference engine over a fake transport: routing by inventory, aliases and the default
model, the final stats, what a backend's sensible refusals (missing model, bad request, no
embeddings) do to routing, and in-flight accounting. Failover has its own home in ./failover."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from llmmesh.common.model_call import EmbedResult, Finished, GenerationEvent, ModelCall, TextDelta, ToolCalls
from llmmesh.framework.errors import TOOLS_UNSUPPORTED, InvalidArgument, NotFound, Unimplemented
from llmmesh.inference.engine import InferenceEngine
from llmmesh.inference.failures import BackendFailure, BackendRejected, ModelMissing, Unsupported
from tests.support.fake_transport import FakeTransport, fake_engine, ollama_lines, openai_lines


async def generate(engine: InferenceEngine, model: str = "m", prompt: str = "hi") -> list[GenerationEvent]:
    return [e async for e in engine.generate(ModelCall(model, prompt=prompt))]


def text(events: list[GenerationEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def stats_of(events: list[GenerationEvent]):
    assert isinstance(events[-1], Finished)
    return events[-1].stats


async def test_a_generation_streams_the_backends_tokens_and_ends_with_its_stats() -> None:
    transport = FakeTransport(streams={"a": [ollama_lines("Hel", "lo", prompt_tokens=9)]})
    events = await generate(fake_engine(transport, "a"))
    assert events[:2] == [TextDelta("Hel"), TextDelta("lo")]
    stats = stats_of(events)
    assert (stats.model, stats.backend, stats.done_reason, stats.prompt_tokens, stats.output_tokens) == (
        "m", "a", "stop", 9, 2)
    assert (stats.failed_over, stats.attempts, stats.backends) == (False, 1, ("a",))
    assert stats.total_ms >= stats.time_to_first_token_ms > 0
    assert transport.sent[0].path == "/api/generate" and transport.sent[0].body["prompt"] == "hi"


async def test_requests_go_to_a_backend_serving_the_model_by_name_alias_or_default() -> None:
    transport = FakeTransport(streams={"a": [ollama_lines("x")], "b": [ollama_lines("y")]})
    engine = fake_engine(transport, "a", "b", aliases=(("fast", "m2"),), default_model="fast")
    engine.pool.backends[0].models = {"m1:latest"}
    engine.pool.backends[1].models = {"m2:latest"}
    for model, backend, resolved in (("m1", "a", "m1"), ("m2:latest", "b", "m2:latest"), ("fast", "b", "m2"),
                                     ("", "b", "m2")):
        stats = stats_of(await generate(engine, model))
        assert (stats.backend, stats.model) == (backend, resolved), model
    assert transport.bodies("b")[-1]["model"] == "m2"


async def test_without_a_configured_default_the_first_listed_model_is_used() -> None:
    engine = fake_engine(FakeTransport(), "a", models=("zeta", "alpha"))
    assert engine.default_model() == "alpha" and engine.resolve("") == "alpha"


async def test_an_unknown_model_is_not_found_before_any_backend_is_called() -> None:
    transport = FakeTransport()
    with pytest.raises(NotFound):
        await generate(fake_engine(transport, "a"), "nope")
    assert transport.sent == []


async def test_tool_calls_pass_through_and_openai_backends_are_spoken_to_in_their_protocol() -> None:
    fragment = {"index": 0, "id": "c1", "function": {"name": "clock", "arguments": "{}"}}
    transport = FakeTransport(streams={"o": [openai_lines(tool_fragments=[fragment])]})
    events = await generate(fake_engine(transport, "o=http://o.invalid:8080#openai"))
    assert isinstance(events[0], ToolCalls) and events[0].calls[0].name == "clock"
    assert stats_of(events).done_reason == "tool_calls"
    assert transport.sent[0].path == "/v1/chat/completions"


async def test_a_backend_that_lost_the_model_leaves_the_routing_and_keeps_its_circuit_closed() -> None:
    transport = FakeTransport(streams={"a": [[ModelMissing("a", "model 'm' not found", status=404)]],
                                       "b": [ollama_lines("ok")]})
    engine = fake_engine(transport, "a", "b")
    a = engine.pool.backends[0]
    a.loaded = {"m"}  # preferred
    stats = stats_of(await generate(engine))
    assert stats.backends == ("a", "b") and stats.backend == "b"
    assert "m" not in a.models and a.breaker.allows() and a.last_error == ""
    assert stats_of(await generate(engine)).backends == ("b",)  # not tried again until its inventory says so


async def test_a_rejected_request_is_invalid_argument_and_not_retried() -> None:
    transport = FakeTransport(streams={"a": [[BackendRejected("a", "invalid option 'mirostat'")]],
                                       "b": [ollama_lines("ok")]})
    engine = fake_engine(transport, "a", "b")
    engine.pool.backends[0].loaded = {"m"}
    with pytest.raises(InvalidArgument) as err:
        await generate(engine)
    assert "backend a rejected the request: invalid option" in err.value.message and err.value.reason == ""
    assert [s.backend for s in transport.sent] == ["a"]
    assert engine.pool.backends[0].breaker.allows()


async def test_a_refusal_of_tools_is_remembered_and_says_tools_unsupported() -> None:
    transport = FakeTransport(streams={"a": [[BackendRejected("a", "registry/m does not support tools")]]})
    engine = fake_engine(transport, "a", models=("m:latest",))
    with pytest.raises(InvalidArgument) as err:
        await generate(engine)
    assert err.value.reason == TOOLS_UNSUPPORTED
    backend = engine.pool.backends[0]
    assert backend.refused_tools == {"m:latest"} and backend.capabilities_of("m").native_tools is False


async def test_in_flight_is_counted_per_backend_and_released_at_the_end() -> None:
    engine = fake_engine(FakeTransport(streams={"a": [ollama_lines("x", "y")]}), "a")
    a = engine.pool.backends[0]
    seen = [a.in_flight async for _ in engine.generate(ModelCall("m", prompt="hi"))]
    assert seen == [1, 1, 0]  # held while tokens stream, released before the final stats


# ---- embeddings ------------------------------------------------------------------------------

async def test_embeddings_skip_backends_without_them_and_none_left_is_unimplemented() -> None:
    vectors = {"embeddings": [[0.5, 0.25]], "prompt_eval_count": 2}
    transport = FakeTransport(docs={("a", "/api/embed"): Unsupported("a", "no embeddings here"),
                                    ("b", "/api/embed"): vectors})
    engine = fake_engine(transport, "a", "b")
    engine.pool.backends[0].loaded = {"m"}
    assert await engine.embed("m", ["x"]) == EmbedResult("m", "b", ((0.5, 0.25),), 2)
    assert engine.pool.backends[0].breaker.allows()
    transport.docs[("b", "/api/embed")] = Unsupported("b", "neither here")
    with pytest.raises(Unimplemented) as err:
        await engine.embed("m", ["x"])
    assert "a: no embeddings here" in err.value.message and "b: neither here" in err.value.message


async def test_a_malformed_embeddings_answer_counts_as_a_failure_and_is_retried_elsewhere() -> None:
    transport = FakeTransport(docs={("a", "/api/embed"): {"vectors": []},
                                    ("b", "/api/embed"): {"embeddings": [[1.0]]}})
    engine = fake_engine(transport, "a", "b")
    engine.pool.backends[0].loaded = {"m"}
    assert (await engine.embed("m", ["x"])).backend == "b"
    assert engine.pool.backends[0].last_error == "malformed embeddings response"


async def test_close_closes_the_transport() -> None:
    transport = FakeTransport()
    await fake_engine(transport, "a").close()
    assert transport.closed



async def test_an_inventory_refresh_publishes_backend_health_without_any_request() -> None:
    registry = CollectorRegistry()
    transport = FakeTransport(docs={("a", "/api/tags"): {"models": [{"name": "m:latest"}]},
                                    ("a", "/api/ps"): {"models": []}})
    engine = fake_engine(transport, "a", registry=registry)
    engine.pool.backends[0].healthy = False
    await engine.inventory.refresh()
    assert registry.get_sample_value("llmmesh_backend_healthy", {"backend": "a"}) == 1.0
    transport.docs[("a", "/api/tags")] = BackendFailure("a", "connection refused")
    await engine.inventory.refresh()
    assert registry.get_sample_value("llmmesh_backend_healthy", {"backend": "a"}) == 0.0


async def test_prompt_and_output_tokens_are_counted_per_model_and_backend() -> None:
    registry = CollectorRegistry()
    transport = FakeTransport(streams={"a": [ollama_lines("Hel", "lo", prompt_tokens=9)]},
                              docs={("a", "/api/embed"): {"embeddings": [[1.0]], "prompt_eval_count": 4}})
    engine = fake_engine(transport, "a", registry=registry)
    await generate(engine)
    labels = {"model": "m", "backend": "a"}
    assert registry.get_sample_value("llmmesh_inference_output_tokens_total", labels) == 2
    assert registry.get_sample_value("llmmesh_inference_prompt_tokens_total", labels) == 9
    engine.pool.backends[0].loaded = {"m"}
    await engine.embed("m", ["x"])
    assert registry.get_sample_value("llmmesh_inference_prompt_tokens_total", labels) == 9 + 4
