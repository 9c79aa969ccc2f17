"""Ollama JSON ⇄ inference protobuf: pure functions, and the Ollama front door in process for what
the simulator mesh cannot show through Envoy (a failure in the middle of a stream)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from llmmesh.common.structs import dict_to_struct, struct_to_dict
from llmmesh.gateway import ollama_request, ollama_response
from llmmesh.gateway.errors import ApiError
from llmmesh.inference.v1 import inference_service_pb2 as pb
from llmmesh.simulator.config import FaultSpec, SimulatorConfig
from tests.gateway.support import running_gateway

pytestmark = pytest.mark.xdist_group("gateway_unit")


def chat(**body: Any) -> ollama_request.ChatParams:
    return ollama_request.chat_params({"model": "m", "messages": [{"role": "user", "content": "hi"}], **body})


def refused(parse: Any, body: dict[str, Any]) -> ApiError:
    with pytest.raises(ApiError) as err:
        parse({"model": "m", **body})
    assert err.value.status == 400 and set(err.value.ollama_body()) == {"error"}
    return err.value


def test_options_map_onto_generation_options_and_the_rest_is_accepted() -> None:
    p = chat(options={"temperature": 0.5, "num_predict": 7, "seed": 3, "stop": ["END"], "num_ctx": 2048,
                      "top_p": 0.9, "frequency_penalty": 0.2, "top_k": 40, "repeat_penalty": 1.1, "mirostat": 0},
             keep_alive="10m", think=True)
    o = p.request.options
    assert (o.temperature, o.max_tokens, o.seed, list(o.stop), o.num_ctx, o.top_p, o.frequency_penalty) == (
        0.5, 7, 3, ["END"], 2048, 0.9, 0.2)
    assert p.stream is True and not p.load_only and not p.unload  # Ollama streams unless told not to
    # Ollama's -1 (no limit) and -2 (fill the context) leave the bound to the server.
    assert not chat(options={"num_predict": -1}).request.options.HasField("max_tokens")
    assert chat(stream=False).stream is False


def test_format_is_json_or_a_schema() -> None:
    assert struct_to_dict(chat(format="json").request.json_schema) == {"type": "object"}
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    assert struct_to_dict(chat(format=schema).request.json_schema) == schema
    assert not chat(format="").request.HasField("json_schema")
    assert "format" in refused(ollama_request.chat_params, {"format": "yaml"}).message


def test_tool_calls_get_ids_and_results_pair_with_them() -> None:
    p = ollama_request.chat_params({"model": "m", "messages": [
        {"role": "user", "content": "weather and time?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
            {"function": {"name": "clock", "arguments": {}}}]},
        {"role": "tool", "tool_name": "clock", "content": "12:00"},
        {"role": "tool", "content": "21C"},
    ], "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]})
    m = p.request.messages
    assert [c.id for c in m[1].tool_calls] == ["call_1_0", "call_1_1"]
    assert struct_to_dict(m[1].tool_calls[0].arguments) == {"city": "Paris"}
    # By name first, else the earliest unanswered call.
    assert (m[2].tool_call_id, m[2].name) == ("call_1_1", "clock")
    assert (m[3].tool_call_id, m[3].name) == ("call_1_0", "get_weather")
    assert [t.name for t in p.request.tools] == ["get_weather"]


@pytest.mark.parametrize(("parse", "body", "named"), [
    (ollama_request.chat_params, {"messages": [{"role": "robot", "content": "x"}]}, "role"),
    (ollama_request.chat_params, {"messages": [{"role": "user", "content": "x", "images": ["aGk="]}]}, "images"),
    (ollama_request.chat_params, {"messages": [], "options": {"seed": 1.5}}, "seed"),
    (ollama_request.chat_params, {"messages": [], "stream": "yes"}, "stream"),
    (ollama_request.chat_params, {"messages": [], "keep_alive": [1]}, "keep_alive"),
    (ollama_request.generate_params, {"prompt": "x", "suffix": "y"}, "suffix"),
    (ollama_request.generate_params, {"prompt": 3}, "prompt"),
    (ollama_request.embed_params, {"input": [1]}, "input"),
    (ollama_request.embed_params, {"input": "x", "dimensions": 0}, "dimensions"),
])
def test_what_cannot_be_carried_or_is_mistyped_is_a_400(parse: Any, body: dict[str, Any], named: str) -> None:
    assert named in refused(parse, body).message


def test_missing_model_and_load_only_requests() -> None:
    with pytest.raises(ApiError) as err:
        ollama_request.generate_params({"prompt": "x"})
    assert err.value.status == 400 and "model" in err.value.message
    load = ollama_request.generate_params({"model": "m", "keep_alive": 0})
    assert load.load_only and load.unload
    assert ollama_request.chat_params({"model": "m", "keep_alive": "0s"}).unload


def test_final_chunk_counts_and_durations() -> None:
    done = pb.GenerationDone(done_reason="tool_calls", prompt_tokens=3, output_tokens=5, total_ms=12.5,
                             time_to_first_token_ms=2.5)
    final = ollama_response.final_fields(done)
    assert final == {"done": True, "done_reason": "stop", "total_duration": 12_500_000, "load_duration": 0,
                     "prompt_eval_count": 3, "prompt_eval_duration": 2_500_000, "eval_count": 5,
                     "eval_duration": 10_000_000}
    call = pb.ToolCall(id="c", name="f", arguments=dict_to_struct({"n": 2}))
    (line,) = ollama_response.NdjsonFramer("m", "chat").tool_calls([call])
    message = json.loads(line)["message"]
    assert message["tool_calls"] == [{"id": "c", "function": {"index": 0, "name": "f", "arguments": {"n": 2}}}]


def test_models_tags_ps_and_show() -> None:
    listed = pb.ListModelsResponse(models=[
        pb.ModelInfo(name="a:latest", aliases=["fast"], loaded_on=["b1"], context_window=8192, native_tools=True),
        pb.ModelInfo(name="b:1b")])
    assert [m["name"] for m in ollama_response.tags(listed)["models"]] == ["a:latest", "b:1b", "fast"]
    assert [(m["name"], m["context_length"]) for m in ollama_response.ps(listed)["models"]] == [
        ("a:latest", 8192), ("fast", 8192)]
    assert ollama_response.find(listed, "a") is listed.models[0]  # a bare name is its :latest tag
    assert ollama_response.find(listed, "b") is None
    shown = ollama_response.show(listed.models[0])
    assert shown["capabilities"] == ["completion", "tools"] and shown["model_info"]["llmmesh.context_length"] == 8192
    assert ollama_response.show(listed.models[1])["capabilities"] == ["completion"]


async def test_a_failure_mid_stream_is_an_error_line_after_the_tokens(inference_mesh) -> None:
    # The backend breaks after 3 frames; with one attempt allowed the inference service gives up.
    sim = SimulatorConfig(fault=FaultSpec(fail_at_chunk=3))
    async with inference_mesh(sim, max_attempts=1) as mesh, running_gateway(mesh.port) as gw, \
            httpx.AsyncClient(timeout=30) as http:
        raw = await http.post(f"{gw.url}/api/generate", json={"model": "smollm2:135m", "prompt": "hi"})
    lines = [json.loads(line) for line in raw.text.splitlines()]
    assert raw.status_code == 200
    # The 3 tokens before the break (they may arrive joined), then the error line.
    assert lines[:-1] and all(line.get("response") for line in lines[:-1])
    assert set(lines[-1]) == {"error"} and not any(line.get("done") for line in lines)
