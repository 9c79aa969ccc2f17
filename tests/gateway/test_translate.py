"""OpenAI JSON ⇄ inference protobuf, and gRPC statuses -> OpenAI errors: pure functions."""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

import pytest
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from llmmesh.common.structs import dict_to_struct, struct_to_dict
from llmmesh.gateway import errors, openai_request, openai_response
from llmmesh.gateway.errors import ApiError
from llmmesh.inference.v1 import inference_service_pb2 as pb

pytestmark = pytest.mark.xdist_group("gateway_unit")


def chat(**body: Any) -> openai_request.ChatParams:
    return openai_request.chat_params({"model": "m", "messages": [{"role": "user", "content": "hi"}], **body})


def refused(body: dict[str, Any]) -> ApiError:
    with pytest.raises(ApiError) as err:
        openai_request.chat_params({"model": "m", "messages": [{"role": "user", "content": "hi"}], **body})
    assert err.value.status == 400
    return err.value


def test_a_stream_asks_for_the_streamed_completion_with_the_same_fields() -> None:
    streamed, whole = chat(stream=True, max_tokens=5), chat(max_tokens=5)
    assert isinstance(streamed.request, pb.CompleteChatStreamRequest) and streamed.stream
    assert isinstance(whole.request, pb.CompleteChatRequest) and not whole.stream
    assert streamed.request.SerializeToString() == whole.request.SerializeToString()


def test_messages_roles_parts_tool_calls_and_results() -> None:
    params = openai_request.chat_params({"model": "m", "messages": [
        {"role": "developer", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "weather "}, {"type": "text", "text": "in Paris?"}],
         "name": "ignored"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
        ]},
        {"role": "tool", "tool_call_id": "call_a", "content": '{"temp_c": 21}'},
    ]})
    m = params.request.messages
    assert [x.role for x in m] == [pb.ROLE_SYSTEM, pb.ROLE_USER, pb.ROLE_ASSISTANT, pb.ROLE_TOOL]
    assert m[1].content == "weather in Paris?"
    (call,) = m[2].tool_calls
    assert (call.id, call.name, struct_to_dict(call.arguments)) == ("call_a", "get_weather", {"city": "Paris"})
    assert (m[3].tool_call_id, m[3].name, m[3].content) == ("call_a", "get_weather", '{"temp_c": 21}')


def test_sampling_options_and_their_param_names() -> None:
    p = chat(temperature=0.5, top_p=1, seed=42, max_tokens=10, stop="END", user="u", presence_penalty=1)
    o = p.request.options
    assert (o.temperature, o.top_p, o.seed, o.max_tokens, list(o.stop)) == (0.5, 1.0, 42, 10, ["END"])
    assert p.max_tokens_param == "max_tokens" and not p.stream
    newer = chat(max_completion_tokens=7, stop=["a", "b"], stream=True, stream_options={"include_usage": True})
    assert newer.request.options.max_tokens == 7 and list(newer.request.options.stop) == ["a", "b"]
    assert (newer.max_tokens_param, newer.stream, newer.include_usage) == ("max_completion_tokens", True, True)
    assert not chat().request.options.HasField("temperature")


def test_tools_and_tool_choice() -> None:
    tools = [{"type": "function", "function": {"name": "a", "parameters": {"type": "object"}}},
             {"type": "function", "function": {"name": "b", "description": "B"}}]
    assert [t.name for t in chat(tools=tools).request.tools] == ["a", "b"]
    assert [t.name for t in chat(tools=tools, tool_choice="auto").request.tools] == ["a", "b"]
    assert list(chat(tools=tools, tool_choice="none").request.tools) == []
    named = chat(tools=tools, tool_choice={"type": "function", "function": {"name": "b"}})
    assert [t.name for t in named.request.tools] == ["b"]
    assert named.request.model == "m" and len(named.request.messages) == 1
    assert refused({"tools": tools, "tool_choice": "required"}).param == "tool_choice"
    assert refused({"tools": tools, "tool_choice": {"type": "function", "function": {"name": "zz"}}}).param == \
        "tool_choice"
    assert refused({"tools": [{"type": "retrieval"}]}).param == "tools[0].type"


def test_response_format_becomes_the_json_schema() -> None:
    schema = {"type": "object", "properties": {"x": {"type": "string"}}}
    p = chat(response_format={"type": "json_schema", "json_schema": {"name": "s", "schema": schema}})
    assert struct_to_dict(p.request.json_schema) == schema
    assert struct_to_dict(chat(response_format={"type": "json_object"}).request.json_schema) == {
        "type": "object"}
    assert not chat(response_format={"type": "text"}).request.HasField("json_schema")


@pytest.mark.parametrize(("body", "param"), [
    ({"n": 3}, "n"),
    ({"logprobs": True}, "logprobs"),
    ({"stream": "yes"}, "stream"),
    ({"stream_options": {"include_usage": True}}, "stream_options"),
    ({"temperature": "hot"}, "temperature"),
    ({"max_tokens": 1.5}, "max_tokens"),
    ({"seed": True}, "seed"),
    ({"stop": [1]}, "stop"),
    ({"model": 3}, "model"),
    ({"messages": "hi"}, "messages"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
     "messages[0].content[0].type"),
    ({"messages": [{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "[1]"}}]}]},
     "messages[0].tool_calls[0].function.arguments"),
    ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
    ({"response_format": {"type": "json_schema"}}, "response_format.json_schema"),
])
def test_wrong_types_and_unsupported_values_are_400_naming_the_param(body: dict[str, Any], param: str) -> None:
    err = refused(body)
    assert err.param == param
    assert set(err.openai_body()["error"]) == {"message", "type", "param", "code"}


def test_missing_model_is_a_missing_parameter() -> None:
    with pytest.raises(ApiError) as err:
        openai_request.chat_params({"messages": [{"role": "user", "content": "hi"}]})
    assert (err.value.param, err.value.code) == ("model", "missing_required_parameter")


def test_completion_and_chunk_shapes() -> None:
    done = pb.GenerationDone(model="m:1", done_reason="stop", prompt_tokens=3, output_tokens=2)
    call = pb.ToolCall(id="c", name="f", arguments=dict_to_struct({"n": 2, "x": [1.5, 3]}))
    body = openai_response.completion(pb.CompleteChatResponse(
        message=pb.Message(role=pb.ROLE_ASSISTANT, tool_calls=[call]), done=done), "alias")
    (choice,) = body["choices"]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    # Struct numbers are doubles; integers come back as integers.
    assert json.loads(choice["message"]["tool_calls"][0]["function"]["arguments"]) == {"n": 2, "x": [1.5, 3]}
    assert "2.0" not in choice["message"]["tool_calls"][0]["function"]["arguments"]
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    assert body["model"] == "m:1" and body["object"] == "chat.completion"
    chunks = openai_response.SseFramer("m", include_usage=True)
    assert chunks.chunk({"content": "x"})["usage"] is None
    assert chunks.usage_chunk(done)["choices"] == []
    assert "usage" not in openai_response.SseFramer("m", include_usage=False).chunk({})
    # The framer numbers tool calls across events, and the finish reason follows them.
    first, second = chunks.tool_calls([call]), chunks.tool_calls([call, call])
    indexes = [tc["index"] for frame in (*first, *second)
               for tc in json.loads(frame.removeprefix(b"data: "))["choices"][0]["delta"]["tool_calls"]]
    assert indexes == [0, 1, 2]
    *finish, usage_frame, end = chunks.done(done)
    assert json.loads(finish[0].removeprefix(b"data: "))["choices"][0]["finish_reason"] == "tool_calls"
    assert json.loads(usage_frame.removeprefix(b"data: "))["usage"]["total_tokens"] == 5
    assert end == b"data: [DONE]\n\n"
    assert openai_response.finish_reason("length", False) == "length"
    assert openai_response.finish_reason("cancelled", False) == "stop"


def test_embeddings_request_and_encodings() -> None:
    p = openai_request.embed_params({"model": "e", "input": "one", "encoding_format": "base64", "dimensions": 2})
    assert list(p.request.inputs) == ["one"] and p.dimensions == 2
    resp = pb.EmbedResponse(model="e", prompt_tokens=4, embeddings=[pb.Embedding(values=[3.0, 4.0, 12.0])])
    body = openai_response.embeddings(resp, p)
    packed = base64.b64decode(body["data"][0]["embedding"])
    assert struct.unpack("<2f", packed) == pytest.approx((0.6, 0.8))
    as_floats = openai_response.embeddings(resp, openai_request.embed_params({"model": "e", "input": ["a"]}))
    assert as_floats["data"][0]["embedding"] == [3.0, 4.0, 12.0]
    assert as_floats["usage"] == {"prompt_tokens": 4, "total_tokens": 4}
    for bad, param in (({"input": [[1, 2]]}, "input"), ({"input": "x", "encoding_format": "hex"}, "encoding_format"),
                       ({"input": "x", "dimensions": 0}, "dimensions")):
        with pytest.raises(ApiError) as err:
            openai_request.embed_params({"model": "e", **bad})
        assert err.value.param == param


def _packed(message: Any) -> any_pb2.Any:
    out = any_pb2.Any()
    out.Pack(message)
    return out


def test_grpc_statuses_map_to_openai_errors() -> None:
    bad = error_details_pb2.BadRequest(field_violations=[
        error_details_pb2.BadRequest.FieldViolation(field="options.max_tokens", description="too many")])
    status = status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message="invalid", details=[_packed(bad)])
    err = errors.from_status(status, errors.chat_param("max_completion_tokens"))
    assert (err.status, err.param, err.type) == (400, "max_completion_tokens", "invalid_request_error")
    mapper = errors.chat_param()
    assert [mapper(f) for f in ("options.stop[3]", "json_schema", "tools[1].name", "messages[0].role")] == [
        "stop", "response_format", "tools[1].function.name", "messages[0].role"]
    assert errors.embeddings_param("inputs[2]") == "input"

    missing = errors.from_status(status_pb2.Status(code=code_pb2.NOT_FOUND, message="model 'x' not found"))
    assert (missing.status, missing.code, missing.param) == (404, "model_not_found", "model")

    delay = duration_pb2.Duration(seconds=2, nanos=500_000_000)
    busy = errors.from_status(status_pb2.Status(code=code_pb2.RESOURCE_EXHAUSTED, message="busy",
                                                details=[_packed(error_details_pb2.RetryInfo(retry_delay=delay))]))
    assert (busy.status, busy.code) == (429, "rate_limit_exceeded")
    assert busy.headers == {"retry-after": "3", "retry-after-ms": "2500"}
    for code, http in ((code_pb2.UNAVAILABLE, 503), (code_pb2.UNAUTHENTICATED, 401), (code_pb2.PERMISSION_DENIED, 403),
                       (code_pb2.DEADLINE_EXCEEDED, 504), (code_pb2.INTERNAL, 500), (code_pb2.UNKNOWN, 500)):
        assert errors.from_status(status_pb2.Status(code=code, message="m")).status == http
