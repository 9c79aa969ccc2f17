"""The protocol adapters on their own: the HTTP body each builds for a model call (Ollama's native
API, the OpenAI-compatible one) and how each turns a streamed body into events."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence

import pytest

from llmmesh.common.model_call import (
    BackendDone,
    ChatMessage,
    ModelCall,
    Sampling,
    TextDelta,
    ToolCallData,
    ToolCalls,
    ToolDef,
)
from llmmesh.inference.failures import BackendFailure
from llmmesh.inference.protocols import OllamaProtocol, OpenAIProtocol, WireProtocol
from tests.support.fake_transport import ollama_lines, openai_lines

SCHEMA = {"type": "object", "properties": {"score": {"type": "integer"}}, "required": ["score"]}
WEATHER = ToolDef("weather", "Weather for a city.", {"type": "object", "properties": {"city": {"type": "string"}}})
FULL = Sampling(temperature=0.2, max_tokens=64, seed=7, stop=("END",), num_ctx=2048, top_p=0.9,
                frequency_penalty=0.5)
# A chat with a tool round trip: the assistant asked for a tool, the tool answered.
CALL = ToolCallData("call_1", "weather", {"city": "Paris"})
TOOL_CHAT = ModelCall("m", messages=(ChatMessage("user", "Weather in Paris?"),
                                     ChatMessage("assistant", "", tool_calls=(CALL,)),
                                     ChatMessage("tool", "sunny", tool_call_id="call_1", name="weather")),
                      system="Be brief.", tools=(WEATHER,))


async def events(protocol: WireProtocol, lines: Sequence[str]) -> list[object]:
    async def feed() -> AsyncIterator[str]:
        for line in lines:
            yield line

    return [e async for e in protocol.events("a", feed())]


# ---- Ollama: requests -------------------------------------------------------------------------

def test_ollama_generate_maps_every_sampling_option_and_the_schema_to_format() -> None:
    path, body = OllamaProtocol().request(ModelCall("m", prompt="hi", system="sys", sampling=FULL,
                                                    json_schema=SCHEMA), "")
    assert path == "/api/generate"
    assert body == {"model": "m", "stream": True, "prompt": "hi", "system": "sys", "format": SCHEMA, "options": {
        "temperature": 0.2, "num_predict": 64, "seed": 7, "stop": ["END"], "num_ctx": 2048, "top_p": 0.9,
        "frequency_penalty": 0.5}}


def test_ollama_leaves_out_options_the_call_does_not_set() -> None:
    _, body = OllamaProtocol().request(ModelCall("m", prompt="hi", sampling=Sampling(frequency_penalty=0.3)), "")
    assert body["options"] == {"frequency_penalty": 0.3}
    assert "format" not in body and "tools" not in body


def test_ollama_chat_sends_tools_and_the_tool_round_trip_in_its_own_shape() -> None:
    path, body = OllamaProtocol().request(TOOL_CHAT, "")
    assert path == "/api/chat"
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?"},
        # Ollama takes arguments as an object, and no call id.
        {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "weather",
                                                                          "arguments": {"city": "Paris"}}}]},
        {"role": "tool", "content": "sunny", "tool_name": "weather"},
    ]
    assert body["tools"] == [{"type": "function", "function": {
        "name": "weather", "description": "Weather for a city.", "parameters": WEATHER.parameters}}]


def test_a_continuation_turns_a_generate_into_a_chat_ending_with_the_delivered_prefix() -> None:
    path, body = OllamaProtocol().request(ModelCall("m", prompt="tell a story", system="sys"), "Once upon")
    assert path == "/api/chat" and "prompt" not in body
    assert body["messages"] == [{"role": "system", "content": "sys"}, {"role": "user", "content": "tell a story"},
                                {"role": "assistant", "content": "Once upon"}]


# ---- Ollama: streamed answers -----------------------------------------------------------------

async def test_ollama_stream_is_deltas_then_done_with_its_counts() -> None:
    lines = ["", *ollama_lines("Hel", "lo", done_reason="length", prompt_tokens=11, output_tokens=2)]
    assert await events(OllamaProtocol(), lines) == [TextDelta("Hel"), TextDelta("lo"), BackendDone("length", 11, 2)]


async def test_ollama_generate_chunks_carry_text_as_response() -> None:
    lines = [json.dumps({"response": "hi", "done": False}),
             json.dumps({"response": "", "done": True, "done_reason": "stop", "eval_count": 1})]
    assert await events(OllamaProtocol(), lines) == [TextDelta("hi"), BackendDone("stop", 0, 1)]


async def test_ollama_tool_calls_come_typed_and_make_the_done_reason_tool_calls() -> None:
    calls = [{"function": {"name": "weather", "arguments": {"city": "Paris"}}},
             {"id": "x9", "function": {"name": "clock", "arguments": '{"tz": "UTC"}'}}]
    got = await events(OllamaProtocol(), ollama_lines(tool_calls=calls))
    assert got == [ToolCalls((ToolCallData("call_0", "weather", {"city": "Paris"}),
                              ToolCallData("x9", "clock", {"tz": "UTC"}))),
                   BackendDone("tool_calls", 7, 0)]


@pytest.mark.parametrize(("lines", "reason"), [
    ([json.dumps({"error": "model crashed"})], "error in stream: model crashed"),
    ([json.dumps({"error": {"message": "out of memory"}})], "error in stream: out of memory"),
    (["{not json"], "malformed stream chunk"),
    (["[1, 2]"], "not a JSON object"),
    (ollama_lines("a", "b")[:-1], "without a final chunk"),
])
async def test_a_broken_ollama_stream_is_a_backend_failure(lines: list[str], reason: str) -> None:
    with pytest.raises(BackendFailure) as failure:
        await events(OllamaProtocol(), lines)
    assert failure.value.backend == "a" and reason in failure.value.reason


def test_ollama_embeddings_and_inventory() -> None:
    protocol = OllamaProtocol()
    assert protocol.embed_request("e", ["x", "y"]) == ("/api/embed", {"model": "e", "input": ["x", "y"]})
    assert protocol.embed_result({"embeddings": [[0.1], [0.2]], "prompt_eval_count": 4}) == ([[0.1], [0.2]], 4)
    assert protocol.inventory_paths == ("/api/tags", "/api/ps")
    tags = {"models": [{"name": "a:latest"}, {"name": "b:1b"}]}
    assert protocol.inventory(tags, {"models": [{"name": "b:1b"}]}) == ({"a:latest", "b:1b"}, {"b:1b"})
    assert protocol.inventory(tags, None) == ({"a:latest", "b:1b"}, set())


# ---- OpenAI: requests -------------------------------------------------------------------------

def test_openai_maps_sampling_and_the_schema_to_a_strict_response_format() -> None:
    path, body = OpenAIProtocol().request(ModelCall("m", prompt="hi", system="sys", sampling=FULL,
                                                    json_schema=SCHEMA), "")
    assert path == "/v1/chat/completions"
    assert body == {
        "model": "m", "stream": True, "stream_options": {"include_usage": True},
        "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"}],
        # num_ctx is Ollama's: an OpenAI server fixes its window at start.
        "temperature": 0.2, "max_tokens": 64, "seed": 7, "stop": ["END"], "top_p": 0.9, "frequency_penalty": 0.5,
        "response_format": {"type": "json_schema", "json_schema": {"name": "output", "schema": SCHEMA,
                                                                   "strict": True}},
    }


def test_openai_chat_sends_tools_and_the_tool_round_trip_with_ids_and_string_arguments() -> None:
    _, body = OpenAIProtocol().request(TOOL_CHAT, "so far")
    assert body["messages"][2:] == [
        {"role": "assistant", "content": "", "tool_calls": [{"id": "call_1", "type": "function", "function": {
            "name": "weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "content": "sunny", "tool_call_id": "call_1", "name": "weather"},
        {"role": "assistant", "content": "so far"},
    ]
    assert [t["function"]["name"] for t in body["tools"]] == ["weather"]
    assert "temperature" not in body and "response_format" not in body


# ---- OpenAI: streamed answers -----------------------------------------------------------------

async def test_openai_stream_is_deltas_then_done_with_the_usage_chunks_counts() -> None:
    lines = [": keep-alive", "", *openai_lines("Hel", "lo", finish_reason="length", prompt_tokens=5,
                                               output_tokens=2)]
    assert await events(OpenAIProtocol(), lines) == [TextDelta("Hel"), TextDelta("lo"), BackendDone("length", 5, 2)]


async def test_openai_tool_call_fragments_are_assembled_by_index() -> None:
    fragments = [{"index": 0, "id": "c0", "function": {"name": "weat", "arguments": '{"ci'}},
                 {"index": 1, "id": "c1", "function": {"name": "clock", "arguments": ""}},
                 {"index": 0, "function": {"name": "her", "arguments": 'ty": "Paris"}'}},
                 {"index": 2, "function": {"name": "echo", "arguments": "not json"}}]
    got = await events(OpenAIProtocol(), openai_lines(finish_reason="tool_calls", tool_fragments=fragments))
    assert got == [ToolCalls((ToolCallData("c0", "weather", {"city": "Paris"}), ToolCallData("c1", "clock", {}),
                              ToolCallData("call_2", "echo", {"_raw": "not json"}))),
                   BackendDone("tool_calls", 7, 0)]


@pytest.mark.parametrize(("lines", "reason"), [
    (['data: {"error": {"message": "slot unavailable"}}'], "error in stream: slot unavailable"),
    (["data: {oops"], "malformed stream chunk"),
    (openai_lines("a")[:-1], "without [DONE]"),
])
async def test_a_broken_openai_stream_is_a_backend_failure(lines: list[str], reason: str) -> None:
    with pytest.raises(BackendFailure) as failure:
        await events(OpenAIProtocol(), lines)
    assert reason in failure.value.reason


def test_openai_embeddings_come_back_in_index_order_and_inventory_is_all_loaded() -> None:
    protocol = OpenAIProtocol()
    assert protocol.embed_request("e", ["x"]) == ("/v1/embeddings", {"model": "e", "input": ["x"]})
    doc = {"data": [{"index": 1, "embedding": [0.2]}, {"index": 0, "embedding": [0.1]}], "usage": {"prompt_tokens": 3}}
    assert protocol.embed_result(doc) == ([[0.1], [0.2]], 3)
    assert protocol.inventory({"data": [{"id": "m1"}, {"id": "m2"}]}, None) == ({"m1", "m2"}, {"m1", "m2"})
