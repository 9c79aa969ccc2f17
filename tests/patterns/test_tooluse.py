"""Tool use against a real server and scripted simulators: the tool loop, the step limit, tool
errors fed back to the model, parallel calls, the stream's event order, validation, and gRPC
methods of another server used as tools."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from google.rpc import code_pb2
from prometheus_client import CollectorRegistry

from llmmesh.common.v1 import common_pb2
from llmmesh.settings import CacheSettings, Settings
from llmmesh.simulator.config import ScriptRule, SimulatorConfig
from llmmesh.tooluse.v1 import tooluse_service_pb2 as pb
from llmmesh.tooluse.v1 import tooluse_service_pb2_grpc as pb_grpc
from tests.support.inproc import inproc_mesh
from tests.support.rpc import drain, violations
from tests.support.sims import eventually, sim, stats


def call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"function": {"name": name, "arguments": arguments}}


def args(message: Any) -> dict[str, Any]:
    return json_format.MessageToDict(message)


# The follow-up rule comes first and matches only the last message (the tool result), so the
# tool-calling rule cannot answer the second turn again.
LOOP = (ScriptRule(match="regex:^4$", target="last", response="The answer is 4."),
        ScriptRule(match="What is 2+2?", tool_calls=(call("calculator", expression="2+2"),)))


async def test_the_tool_loop_runs_the_call_feeds_the_result_back_and_answers(inference_mesh) -> None:
    async with inference_mesh(sim(*LOOP), services=("inference", "tooluse")) as m:
        resp = await pb_grpc.ToolUseServiceStub(m.channel).Execute(
            pb.ExecuteRequest(prompt="What is 2+2?", model="m", tools=["calculator"]), timeout=30)
        recent = (await stats(m.sims[0]))["recent"]
    assert [(c.name, args(c.arguments), c.step) for c in resp.calls] == [("calculator", {"expression": "2+2"}, 1)]
    assert [(r.call_id, r.name, r.output, r.truncated, r.HasField("error")) for r in resp.results] == [
        (resp.calls[0].call_id, "calculator", "4", False, False)]
    assert resp.answer.strip() == "The answer is 4."
    assert (resp.steps, resp.stop_reason, resp.model) == (2, pb.STOP_REASON_ANSWERED, "m")
    assert resp.usage.model_calls == 2 and resp.usage.output_tokens > 0
    # The second model call saw the tool result as its last message.
    assert [r["scripted"] for r in recent[-2:]] == [True, True]


async def test_a_model_that_always_calls_tools_stops_at_max_steps(inference_mesh) -> None:
    rules = (ScriptRule(match="", tool_calls=(call("calculator", expression="1+1"),)),)
    async with inference_mesh(sim(*rules), services=("inference", "tooluse")) as m:
        resp = await pb_grpc.ToolUseServiceStub(m.channel).Execute(
            pb.ExecuteRequest(prompt="loop forever", model="m", max_steps=3), timeout=30)
    assert (resp.steps, resp.stop_reason) == (3, pb.STOP_REASON_MAX_STEPS)
    assert [c.step for c in resp.calls] == [1, 2, 3]
    assert len({c.call_id for c in resp.calls}) == 3  # unique although the backend numbers per turn
    assert [r.output for r in resp.results] == ["2", "2", "2"]
    assert resp.usage.model_calls == 3  # no extra "answer now" call
    assert resp.answer == ""


async def test_tool_errors_go_back_to_the_model_and_the_run_continues(inference_mesh) -> None:
    rules = (ScriptRule(match="regex:^ERROR INVALID_ARGUMENT", target="last", response="I used the tool wrongly."),
             ScriptRule(match="compute", tool_calls=(call("calculator", expr="1+1"),
                                                     call("calculator", expression="9**9**9"))))
    async with inference_mesh(sim(*rules), services=("inference", "tooluse")) as m:
        resp = await pb_grpc.ToolUseServiceStub(m.channel).Execute(
            pb.ExecuteRequest(prompt="compute", model="m"), timeout=30)
    bad_args, too_big = resp.results
    assert bad_args.error.code == code_pb2.INVALID_ARGUMENT and "expression" in bad_args.error.message
    assert too_big.error.code == code_pb2.INVALID_ARGUMENT and "too large" in too_big.error.message
    assert bad_args.output == too_big.output == ""
    assert resp.answer.strip() == "I used the tool wrongly."
    assert (resp.steps, resp.stop_reason) == (2, pb.STOP_REASON_ANSWERED)


async def test_several_calls_of_one_turn_all_run_and_report_in_order(inference_mesh) -> None:
    rules = (ScriptRule(match="regex:(?s)42.*datetime", response="done"),
             ScriptRule(match="two tools", tool_calls=(call("calculator", expression="6*7"),
                                                       call("clock", timezone="Europe/Paris"))))
    async with inference_mesh(sim(*rules), services=("inference", "tooluse")) as m:
        resp = await pb_grpc.ToolUseServiceStub(m.channel).Execute(
            pb.ExecuteRequest(prompt="two tools", model="m", tools=["calculator", "clock"]), timeout=30)
    assert [(c.name, c.step) for c in resp.calls] == [("calculator", 1), ("clock", 1)]
    assert [r.call_id for r in resp.results] == [c.call_id for c in resp.calls]
    assert resp.results[0].output == "42"
    assert json.loads(resp.results[1].output)["timezone"] == "Europe/Paris"
    assert resp.answer.strip() == "done"  # the second turn saw both results


def kinds(events: list[pb.ExecuteStreamResponse]) -> list[str]:
    out: list[str] = []
    for e in events:
        kind = e.WhichOneof("event")
        if not out or out[-1] != kind:
            out.append(kind)
    return out


async def test_the_stream_emits_call_result_answer_tokens_then_the_result(inference_mesh) -> None:
    async with inference_mesh(sim(*LOOP), services=("inference", "tooluse")) as m:
        stub = pb_grpc.ToolUseServiceStub(m.channel)
        start = pb.ExecuteStreamRequest(execute=pb.ExecuteRequest(prompt="What is 2+2?", model="m"))
        events = [e async for e in stub.ExecuteStream(iter([start]), timeout=30)]
    assert kinds(events) == ["tool_call", "tool_result", "answer", "result"]
    call_ev, result_ev = events[0].tool_call, events[1].tool_result
    assert (call_ev.name, result_ev.call_id, result_ev.output) == ("calculator", call_ev.call_id, "4")
    result = events[-1].result
    assert "".join(e.answer.text for e in events if e.HasField("answer")) == result.answer
    assert result.usage.model_calls == 2 and result.calls[0] == call_ev


async def test_unknown_tools_and_out_of_range_limits_are_field_violations(inference_mesh) -> None:
    async with inference_mesh(sim(), services=("inference", "tooluse"), limits={"max_steps": 4}) as m:
        stub = pb_grpc.ToolUseServiceStub(m.channel)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.Execute(pb.ExecuteRequest(prompt="", tools=["calculator", "nope", "calculator"],
                                                 max_steps=5, options={"max_tokens": 100_000}), timeout=30)
        start = pb.ExecuteStreamRequest(execute=pb.ExecuteRequest(prompt="hi", tools=["nope"]))
        events, stream_err = await drain(stub.ExecuteStream(iter([start]), timeout=30))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    found = violations(err.value)
    assert set(found) == {"prompt", "tools[1]", "tools[2]", "max_steps", "options.max_tokens"}
    assert "nope" in found["tools[1]"] and "twice" in found["tools[2]"] and "4" in found["max_steps"]
    # Refused before any event: the status alone says so (over REST it is the HTTP status).
    assert events == [] and stream_err is not None
    assert stream_err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(stream_err).keys() == {"execute.tools[0]"}


async def test_list_tools_shows_every_builtin_with_its_schema(inference_mesh) -> None:
    async with inference_mesh(sim(), services=("inference", "tooluse")) as m:
        resp = await pb_grpc.ToolUseServiceStub(m.channel).ListTools(pb.ListToolsRequest(), timeout=30)
    tools = {t.name: t for t in resp.tools}
    assert set(tools) == {"calculator", "clock", "http_get"}
    assert all(t.source == "builtin" for t in tools.values())
    assert args(tools["calculator"].parameters)["required"] == ["expression"]
    assert "timezone" in args(tools["clock"].parameters)["properties"]
    assert "Disabled" in tools["http_get"].description  # no hosts allowed by default


async def test_grpc_methods_of_another_server_are_tools_a_model_can_call(
        settings: Settings, registry: CollectorRegistry) -> None:
    # The tool server: an inference service whose only model is "other".
    async with inproc_mesh(settings, CollectorRegistry(), sim(models=("other",))) as target:
        address = f"127.0.0.1:{target.port}"
        rules = (ScriptRule(match="regex:other:latest", target="last", response="It serves other."),
                 ScriptRule(match="Which models", tool_calls=(call("InferenceService.ListModels"),)))
        limits = {"grpc_tool_targets": (address,)}
        async with inproc_mesh(dataclasses.replace(settings), registry, sim(*rules),
                               services=("inference", "tooluse"), limits=limits) as m:
            stub = pb_grpc.ToolUseServiceStub(m.channel)
            listed = {t.name: t for t in (await stub.ListTools(pb.ListToolsRequest(), timeout=30)).tools}
            resp = await stub.Execute(pb.ExecuteRequest(prompt="Which models are there?", model="m",
                                                        tools=["InferenceService.ListModels"]), timeout=30)
    assert {"InferenceService.ListModels", "InferenceService.Embed", "calculator"} <= set(listed)
    assert "InferenceService.Generate" not in listed  # streaming methods are not tools
    assert not any(name.startswith("Health.") or "Reflection" in name for name in listed)
    assert listed["InferenceService.Embed"].source == address
    assert args(listed["InferenceService.Embed"].parameters)["properties"]["inputs"] == {
        "type": "array", "items": {"type": "string"}}
    (result,) = resp.results
    assert not result.HasField("error")
    assert json.loads(result.output)["models"][0]["name"] == "other:latest"
    assert resp.answer.strip() == "It serves other."


async def test_cancel_during_the_answer_stops_the_model_call(inference_mesh) -> None:
    rules = (ScriptRule(match="regex:^4$", target="last", response="slow answer", fault="hang_after=1"),
             LOOP[1])
    async with inference_mesh(sim(*rules), services=("inference", "tooluse")) as m:
        stub = pb_grpc.ToolUseServiceStub(m.channel)
        outbox: list[pb.ExecuteStreamRequest] = [
            pb.ExecuteStreamRequest(execute=pb.ExecuteRequest(prompt="What is 2+2?", model="m"))]
        cancel = pb.ExecuteStreamRequest(cancel=common_pb2.Cancel(reason="enough"))

        async def requests() -> Any:
            yield outbox[0]
            await eventually(lambda: len(seen) >= 3, timeout_s=20)  # call, result, first token
            yield cancel

        seen: list[pb.ExecuteStreamResponse] = []
        call = stub.ExecuteStream(requests(), timeout=30)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            async for event in call:
                seen.append(event)

        async def cancelled() -> bool:
            s = await stats(m.sims[0])
            return s["cancelled"] == 1 and s["in_flight"] == 0
        await eventually(cancelled, timeout_s=20)
    assert err.value.code() == grpc.StatusCode.CANCELLED
    assert kinds(seen) == ["tool_call", "tool_result", "answer", "error"]


def prompted(action: str, **fields: Any) -> str:
    """A prompted turn as the model writes it (patterns.tool_schema)."""
    if action == "final_answer":
        return json.dumps({"action": action, **fields})
    return json.dumps({"action": action, "arguments": fields})


# Prompted turns: the question is the last message, then the tool's result.
PROMPTED = (ScriptRule(match="regex:^calculator returned: 42\n", target="last",
                       response=prompted("final_answer", answer="6 * 7 = 42")),
            ScriptRule(match="What is 6 * 7?", target="last", response=prompted("calculator", expression="6 * 7")))


async def test_a_model_without_tool_calling_calls_tools_through_prompted_json(inference_mesh) -> None:
    config = SimulatorConfig(name="a", models=("m",), no_tools=("m",), scripts=PROMPTED)
    async with inference_mesh(config, services=("inference", "tooluse")) as m:
        stub = pb_grpc.ToolUseServiceStub(m.channel)
        start = pb.ExecuteStreamRequest(execute=pb.ExecuteRequest(prompt="What is 6 * 7?", tools=["calculator"]))
        events = [e async for e in stub.ExecuteStream(iter([start]), timeout=30)]
        recent = (await stats(m.sims[0]))["recent"]
    assert kinds(events) == ["tool_call", "tool_result", "answer", "result"]
    result = events[-1].result
    assert (result.answer, result.tool_calling, result.steps, result.model) == (
        "6 * 7 = 42", pb.TOOL_CALLING_PROMPTED, 2, "m:latest")
    assert [(c.name, args(c.arguments)) for c in result.calls] == [("calculator", {"expression": "6 * 7"})]
    assert result.results[0].output == "42" and result.usage.model_calls == 2
    assert [r["status"] for r in recent] == [200, 200]  # straight to prompted calls: no refused native turn


async def test_a_refused_native_turn_switches_the_run_to_prompted_calls(inference_mesh) -> None:
    # The backend is configured as having native tools, but the model refuses them (Ollama's 400).
    config = SimulatorConfig(name="a", models=("m",), no_tools=("m",), scripts=PROMPTED)
    # The same run twice, its model calls counted: no response cache in between.
    async with inference_mesh(config, services=("inference", "tooluse"), backend_options={"a": ";tools=native"},
                              cache=CacheSettings(enabled=False)) as m:
        stub = pb_grpc.ToolUseServiceStub(m.channel)
        resp = await stub.Execute(pb.ExecuteRequest(prompt="What is 6 * 7?", model="m", tools=["calculator"]),
                                  timeout=30)
        again = await stub.Execute(pb.ExecuteRequest(prompt="What is 6 * 7?", model="m", tools=["calculator"]),
                                   timeout=30)
        recent = (await stats(m.sims[0]))["recent"]
    for r in (resp, again):
        assert (r.answer, r.tool_calling, r.stop_reason) == ("6 * 7 = 42", pb.TOOL_CALLING_PROMPTED,
                                                             pb.STOP_REASON_ANSWERED)
        assert [c.name for c in r.calls] == ["calculator"] and r.usage.model_calls == 2
    # One refusal, then prompted calls only: the second run did not try native tools again.
    assert [r["status"] for r in recent] == [400, 200, 200, 200, 200]


async def test_a_native_run_reports_native_tool_calling(inference_mesh) -> None:
    async with inference_mesh(sim(*LOOP), services=("inference", "tooluse")) as m:
        resp = await pb_grpc.ToolUseServiceStub(m.channel).Execute(
            pb.ExecuteRequest(prompt="What is 2+2?", model="m", tools=["calculator"]), timeout=30)
    assert resp.tool_calling == pb.TOOL_CALLING_NATIVE and resp.answer.strip() == "The answer is 4."
