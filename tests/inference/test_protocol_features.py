"""Chat (bidirectional, with STOP), unary and streamed chat completions, structured output, tools,
embeddings, OpenAI backends, and field-level validation."""

from __future__ import annotations

import asyncio
import json

import grpc
import jsonschema
import pytest

from llmmesh.common.structs import dict_to_struct
from llmmesh.common.v1 import common_pb2
from llmmesh.inference.v1 import inference_service_pb2 as pb
from llmmesh.simulator.config import FaultSpec, SimulatorConfig
from tests.support.rpc import violations
from tests.support.sims import cancelled, eventually, stats

SCHEMA = {
    "type": "object",
    "properties": {"score": {"type": "integer", "minimum": 1, "maximum": 5}, "verdict": {"type": "string"}},
    "required": ["score", "verdict"],
}


def user(text: str) -> pb.Message:
    return pb.Message(role=pb.ROLE_USER, content=text)


async def test_chat_keeps_history_across_turns_and_stop_ends_only_the_generation(inference_mesh) -> None:
    async with inference_mesh(SimulatorConfig(name="a", models=("m",), token_delay_s=0.05, tokens=40)) as m:
        outbox: asyncio.Queue = asyncio.Queue()

        async def requests():
            while (req := await outbox.get()) is not None:
                yield req

        call = m.stub.Chat(requests())
        await outbox.put(pb.ChatRequest(turn=pb.ChatTurn(model="m", messages=[user("tell me a long story")])))
        first = await call.read()
        assert first.WhichOneof("event") == "delta" and first.turn == 1
        await outbox.put(pb.ChatRequest(control=pb.ChatControl(action=pb.CHAT_CONTROL_ACTION_STOP)))
        events = []
        while (ev := await call.read()).WhichOneof("event") != "done":
            events.append(ev)
        assert ev.done.done_reason == "cancelled" and ev.turn == 1
        assert len(events) < 39  # stopped well before the 40 tokens
        assert await eventually(lambda: cancelled(m.sims[0]), timeout_s=2) == 1

        # The stream is still open: a second turn runs to completion with the history.
        await outbox.put(pb.ChatRequest(turn=pb.ChatTurn(model="m", messages=[user("and now?")],
                                                         options=common_pb2.GenerationOptions(max_tokens=3))))
        turn2 = []
        while (ev := await call.read()).WhichOneof("event") != "done":
            turn2.append(ev)
        assert ev.turn == 2 and ev.done.done_reason == "length" and len(turn2) == 3
        await outbox.put(None)
        assert await call.read() is grpc.aio.EOF
        assert await call.code() == grpc.StatusCode.OK
        last = (await stats(m.sims[0]))["recent"][-1]
    assert "tell me a long story" in last["prompt_tail"] or last["path"] == "/api/chat"


async def test_chat_turn_error_is_an_event_and_the_stream_continues(inference_mesh) -> None:
    async with inference_mesh(SimulatorConfig(name="a", models=("m",))) as m:
        reqs = [
            pb.ChatRequest(turn=pb.ChatTurn(model="missing", messages=[user("x")])),
            pb.ChatRequest(turn=pb.ChatTurn(model="m", messages=[user("y")])),
        ]
        events = [ev async for ev in m.stub.Chat(iter(reqs))]
    assert events[0].WhichOneof("event") == "error" and events[0].turn == 1
    assert events[0].error.code == grpc.StatusCode.NOT_FOUND.value[0]
    assert events[-1].WhichOneof("event") == "done" and events[-1].turn == 2


@pytest.mark.parametrize("name", ["ollama", "oai"])
async def test_structured_output_matches_schema(inference_mesh, name: str) -> None:
    async with inference_mesh(SimulatorConfig(name=name, models=("m",))) as m:
        resp = await m.stub.CompleteChat(pb.CompleteChatRequest(
            model="m", messages=[user("rate this")], json_schema=dict_to_struct(SCHEMA)))
    jsonschema.validate(json.loads(resp.message.content), SCHEMA)
    assert resp.done.backend == name


@pytest.mark.parametrize("name", ["ollama", "oai"])
async def test_tool_calls_come_out_typed(inference_mesh, name: str) -> None:
    tool = pb.Tool(name="calculator", description="evaluate arithmetic", parameters=dict_to_struct({
        "type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]}))
    async with inference_mesh(SimulatorConfig(name=name, models=("m",))) as m:
        resp = await m.stub.CompleteChat(pb.CompleteChatRequest(model="m", messages=[user("2+2?")], tools=[tool]))
    assert resp.done.done_reason == "tool_calls"
    assert [c.name for c in resp.message.tool_calls] == ["calculator"]
    assert isinstance(resp.message.tool_calls[0].arguments["expression"], str)


@pytest.mark.parametrize("name", ["ollama", "oai"])
async def test_complete_chat_stream_streams_one_answer_and_its_tool_calls(inference_mesh, name: str) -> None:
    tool = pb.Tool(name="calculator", description="evaluate arithmetic", parameters=dict_to_struct({
        "type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]}))
    async with inference_mesh(SimulatorConfig(name=name, models=("m",), tokens=6)) as m:
        text = [ev async for ev in m.stub.CompleteChatStream(pb.CompleteChatStreamRequest(
            model="m", messages=[pb.Message(role=pb.ROLE_SYSTEM, content="be brief"), user("hi")]))]
        tools = [ev async for ev in m.stub.CompleteChatStream(pb.CompleteChatStreamRequest(
            model="m", messages=[user("2+2?")], tools=[tool]))]
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            async for _ in m.stub.CompleteChatStream(pb.CompleteChatStreamRequest(model="m")):
                pass
    kinds = [e.WhichOneof("event") for e in text]  # deltas (coalesced or not), then done
    assert set(kinds[:-1]) == {"delta"} and kinds[-1] == "done"
    assert text[-1].done.output_tokens == 6 and "".join(e.delta.text for e in text[:-1]).strip()
    assert [e.WhichOneof("event") for e in tools][-2:] == ["tool_calls", "done"]
    assert [c.name for c in tools[-2].tool_calls.tool_calls] == ["calculator"]
    assert tools[-1].done.done_reason == "tool_calls"
    # A failure is the call's status (not an event): the caller's own field is named.
    assert set(violations(refused.value)) == {"messages"}


async def test_complete_chat_stream_failing_mid_answer_ends_with_an_error_event(inference_mesh) -> None:
    # The backend breaks after 3 frames; with one attempt allowed the inference service gives up.
    async with inference_mesh(SimulatorConfig(name="a", models=("m",), fault=FaultSpec(fail_at_chunk=3)),
                              max_attempts=1) as m:
        call = m.stub.CompleteChatStream(pb.CompleteChatStreamRequest(model="m", messages=[user("hi")]))
        events = [ev async for ev in _until_status(call)]
        code = await call.code()
    kinds = [e.WhichOneof("event") for e in events]
    assert set(kinds[:-1]) == {"delta"} and kinds[-1] == "error", kinds
    assert events[-1].error.code == code.value[0] and code == grpc.StatusCode.UNAVAILABLE


async def _until_status(call):
    """The events of a call that ends with a non-OK status (an error event comes before it)."""
    try:
        async for ev in call:
            yield ev
    except grpc.aio.AioRpcError:
        return


def test_the_streamed_completion_request_keeps_the_unary_ones_fields() -> None:
    # The front doors build either from the same code: same names, numbers and types.
    def fields(message: type) -> list[tuple[str, int, int]]:
        return [(f.name, f.number, f.type) for f in message.DESCRIPTOR.fields]

    assert fields(pb.CompleteChatStreamRequest) == fields(pb.CompleteChatRequest)


async def test_openai_backend_streams_with_usage(inference_mesh) -> None:
    async with inference_mesh(SimulatorConfig(name="oai", models=("m",), tokens=7)) as m:
        events = [ev async for ev in m.stub.Generate(pb.GenerateRequest(model="m", prompt="hi", system="be brief"))]
    kinds = [e.WhichOneof("event") for e in events]  # deltas (coalesced or not), then done
    assert set(kinds[:-1]) == {"delta"} and kinds[-1] == "done"
    assert events[-1].done.output_tokens == 7 and events[-1].done.prompt_tokens > 0


async def test_embed_returns_one_vector_per_input(inference_mesh) -> None:
    async with inference_mesh(SimulatorConfig(name="a", models=("m",))) as m:
        resp = await m.stub.Embed(pb.EmbedRequest(model="m", inputs=["a cat", "a dog"]))
    assert len(resp.embeddings) == 2 and len(resp.embeddings[0].values) == 384
    assert list(resp.embeddings[0].values) != list(resp.embeddings[1].values)


async def test_invalid_fields_are_reported_together(inference_mesh) -> None:
    async with inference_mesh(SimulatorConfig(name="a", models=("m",))) as m:
        bad = pb.GenerateRequest(model="m", prompt="", options=common_pb2.GenerationOptions(
            temperature=5, max_tokens=10**6, stop=["x"] * 20))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            _ = [ev async for ev in m.stub.Generate(bad)]
    assert set(violations(err.value)) == {"prompt", "options.temperature", "options.max_tokens", "options.stop"}


async def test_list_backends_reports_health_and_inventory(inference_mesh) -> None:
    async with inference_mesh(SimulatorConfig(name="a", models=("m",)), SimulatorConfig(name="b", models=("m",))) as m:
        from tests.support.sims import set_fault

        await set_fault(m.sims[1], "health=down")
        await eventually(lambda: _health(m, "b", pb.BACKEND_HEALTH_UNHEALTHY), timeout_s=3)
        # The unhealthy backend gets no traffic.
        for i in range(3):
            events = [ev async for ev in m.stub.Generate(pb.GenerateRequest(model="m", prompt=str(i)))]
            assert events[-1].done.backend == "a"
        await set_fault(m.sims[1], "")
        await eventually(lambda: _health(m, "b", pb.BACKEND_HEALTH_HEALTHY), timeout_s=3)


async def _health(m, name: str, want: int) -> bool:
    resp = await m.stub.ListBackends(pb.ListBackendsRequest())
    return any(b.name == name and b.health == want for b in resp.backends)


async def test_embeddings_skip_backends_that_do_not_implement_them(inference_mesh) -> None:
    from tests.support.sims import set_fault

    async with inference_mesh(SimulatorConfig(name="a", models=("m",)), SimulatorConfig(name="b", models=("m",))) as m:
        await set_fault(m.sims[0], "status=501")
        ok = [await m.stub.Embed(pb.EmbedRequest(model="m", inputs=["x"])) for _ in range(3)]
        assert {r.backend for r in ok} == {"b"}
        await set_fault(m.sims[1], "status=501")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await m.stub.Embed(pb.EmbedRequest(model="m", inputs=["x"]))
        backends = {b.name: b for b in (await m.stub.ListBackends(pb.ListBackendsRequest())).backends}
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED and "embeddings" in err.value.details()
    # Not implementing an endpoint is not a failure: no breaker trips.
    assert all(b.circuit == pb.CIRCUIT_STATE_CLOSED for b in backends.values())


def test_schema_properties_follow_required_order_after_struct_transit() -> None:
    from llmmesh.common.structs import canonical_key_order, struct_to_dict

    schema = {"type": "object", "required": ["reasoning", "score"],
              "properties": {"score": {"type": "integer"}, "extra": {"type": "string"},
                             "reasoning": {"type": "string"}}}
    travelled = canonical_key_order(struct_to_dict(dict_to_struct(schema)))
    assert list(travelled["properties"]) == ["reasoning", "score", "extra"]
