"""The Anthropic Messages adapter on its own: the body it builds (system on top, merged turns,
tool_use / tool_result blocks, structured output as a forced tool, a continuation's prefill) and
how it reads Anthropic's SSE events (text, tool use in JSON fragments, usage, stop reasons, errors)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from llmmesh.common.backends import parse_backend
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
from llmmesh.inference.anthropic import OUTPUT_TOOL, AnthropicProtocol
from llmmesh.inference.failures import BackendFailure, Unsupported

SCHEMA = {"type": "object", "properties": {"score": {"type": "integer"}}, "required": ["score"]}
WEATHER = ToolDef("weather", "Weather for a city.", {"type": "object", "properties": {"city": {"type": "string"}}})
PROTOCOL = AnthropicProtocol(parse_backend("claude=https://api.anthropic.com#anthropic"), max_tokens=512)


def sse(*events: dict[str, Any]) -> list[str]:
    lines = []
    for e in events:
        lines += [f"event: {e['type']}", f"data: {json.dumps(e)}", ""]
    return lines


def start(input_tokens: int = 9) -> dict[str, Any]:
    return {"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant",
                                                 "content": [], "usage": {"input_tokens": input_tokens,
                                                                          "output_tokens": 1}}}


def block_start(index: int, block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": block}


def delta(index: int, **d: Any) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": d}


def stop(reason: str, output_tokens: int) -> list[dict[str, Any]]:
    return [{"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": None},
             "usage": {"output_tokens": output_tokens}}, {"type": "message_stop"}]


async def events(lines: Sequence[str], prefix: str = "") -> list[object]:
    async def feed() -> AsyncIterator[str]:
        for line in lines:
            yield line

    return [e async for e in PROTOCOL.events("claude", feed(), prefix)]


def test_system_goes_on_top_and_max_tokens_defaults_from_settings() -> None:
    call = ModelCall("claude-x", messages=(ChatMessage("system", "Be brief."), ChatMessage("user", "Hi"),
                                           ChatMessage("user", "there")),
                     system="You are kind.", sampling=Sampling(temperature=1.7, seed=3, stop=("END", " "),
                                                               frequency_penalty=0.2, top_p=0.9))
    path, body = PROTOCOL.request(call, "")
    assert path == "/v1/messages"
    assert body == {
        "model": "claude-x", "max_tokens": 512, "stream": True, "system": "You are kind.\n\nBe brief.",
        # Consecutive turns of one role merge; Anthropic's temperature tops out at 1; no seed,
        # frequency_penalty or whitespace-only stop sequence exists there.
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "there"}]}],
        "temperature": 1.0, "top_p": 0.9, "stop_sequences": ["END"],
    }
    assert PROTOCOL.request(ModelCall("m", prompt="p", sampling=Sampling(max_tokens=7)), "")[1]["max_tokens"] == 7


def test_tools_and_a_tool_round_trip_become_tool_use_and_tool_result_blocks() -> None:
    call = ModelCall("m", messages=(
        ChatMessage("user", "Weather in Paris?"),
        ChatMessage("assistant", "Let me look.", tool_calls=(ToolCallData("call.1", "weather", {"city": "Paris"}),)),
        ChatMessage("tool", "sunny", tool_call_id="call.1", name="weather"),
        ChatMessage("user", "And so?"),
    ), tools=(WEATHER,))
    _, body = PROTOCOL.request(call, "")
    assert body["tools"] == [{"name": "weather", "description": "Weather for a city.",
                              "input_schema": WEATHER.parameters}]
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Let me look."},
                                          {"type": "tool_use", "id": "call_1", "name": "weather",
                                           "input": {"city": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"},
                                     {"type": "text", "text": "And so?"}]},
    ]


def test_a_tool_result_without_an_id_answers_the_call_of_its_name() -> None:
    call = ModelCall("m", messages=(
        ChatMessage("user", "?"),
        ChatMessage("assistant", "", tool_calls=(ToolCallData("", "clock", {}), ToolCallData("", "weather", {}))),
        ChatMessage("tool", "rain", name="weather"), ChatMessage("tool", "noon", name="clock")))
    _, body = PROTOCOL.request(call, "")
    results = body["messages"][2]["content"]
    assert [(r["tool_use_id"], r["content"]) for r in results] == [("toolu_1", "rain"), ("toolu_0", "noon")]


def test_structured_output_is_a_forced_tool_unless_a_tool_cannot_carry_it() -> None:
    _, body = PROTOCOL.request(ModelCall("m", prompt="Rate it", json_schema=SCHEMA), "")
    assert body["tools"] == [{"name": OUTPUT_TOOL, "description": "Give the answer as this tool's input.",
                              "input_schema": SCHEMA}]
    assert body["tool_choice"] == {"type": "tool", "name": OUTPUT_TOOL} and "system" not in body
    # A continuation cannot go on inside a forced tool: the schema is asked for in the system prompt.
    _, body = PROTOCOL.request(ModelCall("m", prompt="Rate it", json_schema=SCHEMA), '{"score": ')
    assert "tools" not in body and json.dumps(SCHEMA, separators=(",", ":")) in body["system"]
    assert body["messages"][-1] == {"role": "assistant", "content": [{"type": "text", "text": '{"score":'}]}


def test_a_continuation_is_a_prefill_without_trailing_whitespace() -> None:
    _, body = PROTOCOL.request(ModelCall("m", prompt="Tell a story"), "Once upon a ")
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Tell a story"}]},
                                {"role": "assistant", "content": [{"type": "text", "text": "Once upon a"}]}]


async def test_text_stream_with_usage_and_stop_reason() -> None:
    lines = sse(start(12), block_start(0, {"type": "text", "text": ""}), {"type": "ping"},
                delta(0, type="text_delta", text="Hel"), delta(0, type="text_delta", text="lo"),
                {"type": "content_block_stop", "index": 0}, *stop("max_tokens", 2))
    assert await events(lines) == [TextDelta("Hel"), TextDelta("lo"), BackendDone("length", 12, 2)]


async def test_tool_use_arrives_in_json_fragments_and_ends_with_tool_calls() -> None:
    lines = sse(start(), block_start(0, {"type": "text", "text": ""}), delta(0, type="text_delta", text="Checking."),
                {"type": "content_block_stop", "index": 0},
                block_start(1, {"type": "tool_use", "id": "toolu_9", "name": "weather", "input": {}}),
                delta(1, type="input_json_delta", partial_json='{"ci'),
                delta(1, type="input_json_delta", partial_json='ty": "Paris"}'),
                {"type": "content_block_stop", "index": 1},
                block_start(2, {"type": "tool_use", "id": "toolu_10", "name": "clock", "input": {}}),
                {"type": "content_block_stop", "index": 2}, *stop("tool_use", 30))
    assert await events(lines) == [
        TextDelta("Checking."),
        ToolCalls((ToolCallData("toolu_9", "weather", {"city": "Paris"}), ToolCallData("toolu_10", "clock", {}))),
        BackendDone("tool_calls", 9, 30)]


async def test_the_forced_output_tool_streams_as_the_answers_text() -> None:
    lines = sse(start(), block_start(0, {"type": "tool_use", "id": "t", "name": OUTPUT_TOOL, "input": {}}),
                delta(0, type="input_json_delta", partial_json='{"score"'),
                delta(0, type="input_json_delta", partial_json=": 4}"),
                {"type": "content_block_stop", "index": 0}, *stop("tool_use", 5))
    got = await events(lines)
    assert got == [TextDelta('{"score"'), TextDelta(": 4}"), BackendDone("stop", 9, 5)]
    assert json.loads("".join(e.text for e in got if isinstance(e, TextDelta))) == {"score": 4}


@pytest.mark.parametrize(("lines", "reason"), [
    (sse(start(), {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
     "error in stream: Overloaded"),
    (sse(start(), block_start(0, {"type": "text", "text": ""}), delta(0, type="text_delta", text="a")),
     "without message_stop"),
    (["data: {oops"], "malformed stream chunk"),
])
async def test_a_broken_stream_is_a_backend_failure(lines: list[str], reason: str) -> None:
    with pytest.raises(BackendFailure) as failure:
        await events(lines)
    assert reason in failure.value.reason


def test_inventory_lists_every_model_as_served_and_there_are_no_embeddings() -> None:
    assert PROTOCOL.inventory_paths == ("/v1/models?limit=1000",)
    listing = {"data": [{"type": "model", "id": "claude-a"}, {"type": "model", "id": "claude-b"}], "has_more": False}
    assert PROTOCOL.inventory(listing, None) == ({"claude-a", "claude-b"}, {"claude-a", "claude-b"})
    with pytest.raises(Unsupported):
        PROTOCOL.embed_request("claude-a", ["x"])
