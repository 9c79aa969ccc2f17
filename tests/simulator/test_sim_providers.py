"""The simulator as other providers: Anthropic's Messages API (SSE events, tools, its errors, its
/v1/models), API keys on the /v1/ routes, and each continuation behaviour (continue, echo, flag,
ignore) that the mesh's failover must get right."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from simtest_helpers import MODEL

from llmmesh.simulator import RunningSimulator
from llmmesh.simulator.config import ScriptRule

ANTHROPIC = {"anthropic-version": "2023-06-01"}
ANSWER = "Paris is the capital of France and famous for its food."
RULE = ScriptRule(match="Paris", response=ANSWER)


async def anthropic_events(http: httpx.AsyncClient, sim: RunningSimulator, body: dict[str, Any],
                           headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    async with http.stream("POST", sim.url + "/v1/messages", json={"stream": True, **body},
                           headers={**ANTHROPIC, **(headers or {})}) as resp:
        raw = (await resp.aread()).decode()
    assert resp.status_code == 200, raw
    events = []
    for frame in raw.split("\n\n")[:-1]:
        name, data = frame.split("\n")
        doc = json.loads(data.removeprefix("data: "))
        assert name == f"event: {doc['type']}"  # the event line names the data's type
        events.append(doc)
    return events


def text_of(events: list[dict[str, Any]]) -> str:
    return "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta"
                   and e["delta"]["type"] == "text_delta")


async def test_messages_stream_has_anthropics_event_sequence(start_sim, http: httpx.AsyncClient) -> None:
    sim = await start_sim(models=(MODEL,), scripts=(RULE,))
    events = await anthropic_events(http, sim, {"model": MODEL, "max_tokens": 64, "system": "Be brief.",
                                                "messages": [{"role": "user", "content": "Tell me about Paris"}]})
    kinds = [e["type"] for e in events]
    assert kinds[:3] == ["message_start", "ping", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert text_of(events) == ANSWER
    assert events[0]["message"]["usage"]["input_tokens"] > 0
    assert events[-2]["delta"]["stop_reason"] == "end_turn" and events[-2]["usage"]["output_tokens"] == 11
    short = await anthropic_events(http, sim, {"model": MODEL, "max_tokens": 3,
                                               "messages": [{"role": "user", "content": "Paris?"}]})
    assert short[-2]["delta"]["stop_reason"] == "max_tokens"


async def test_messages_tool_use_streams_json_fragments(start_sim, http: httpx.AsyncClient) -> None:
    sim = await start_sim(models=(MODEL,))
    tool = {"name": "weather", "description": "Weather.",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
    events = await anthropic_events(http, sim, {"model": MODEL, "max_tokens": 64, "tools": [tool],
                                                "tool_choice": {"type": "tool", "name": "weather"},
                                                "messages": [{"role": "user", "content": "Weather in Paris?"}]})
    start = next(e for e in events if e["type"] == "content_block_start")
    assert start["content_block"]["type"] == "tool_use" and start["content_block"]["name"] == "weather"
    parts = [e["delta"]["partial_json"] for e in events if e["type"] == "content_block_delta"]
    assert len(parts) == 2 and isinstance(json.loads("".join(parts))["city"], str)
    assert events[-2]["delta"]["stop_reason"] == "tool_use"
    # The tool's result comes back as a tool_result block; the model then answers in text.
    follow_up = await anthropic_events(http, sim, {"model": MODEL, "max_tokens": 8, "tools": [tool], "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "weather",
                                           "input": {"city": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "sunny"}]}]})
    assert text_of(follow_up) and follow_up[-2]["delta"]["stop_reason"] == "max_tokens"


@pytest.mark.parametrize(("body", "error"), [
    ({"messages": [{"role": "user", "content": "hi"}]}, "max_tokens"),
    ({"max_tokens": 5, "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hi "}]},
     "trailing whitespace"),
    ({"max_tokens": 5, "temperature": 1.5, "messages": [{"role": "user", "content": "hi"}]}, "temperature"),
])
async def test_messages_are_checked_as_anthropic_checks_them(start_sim, http: httpx.AsyncClient,
                                                             body: dict[str, Any], error: str) -> None:
    sim = await start_sim(models=(MODEL,))
    resp = await http.post(sim.url + "/v1/messages", json={"model": MODEL, **body}, headers=ANTHROPIC)
    assert resp.status_code == 400
    doc = resp.json()
    assert doc["type"] == "error" and doc["error"]["type"] == "invalid_request_error"
    assert error in doc["error"]["message"]


async def test_models_listing_takes_the_callers_shape_and_owner(start_sim, http: httpx.AsyncClient) -> None:
    sim = await start_sim(models=(MODEL,), continuation="echo")
    anthropic = (await http.get(sim.url + "/v1/models", headers=ANTHROPIC)).json()
    assert anthropic["data"][0] == {"type": "model", "id": MODEL, "display_name": MODEL,
                                    "created_at": "2025-01-01T00:00:00Z"}
    assert anthropic["has_more"] is False
    openai = (await http.get(sim.url + "/v1/models")).json()
    assert openai["data"][0]["owned_by"] == "llamacpp"  # what llama.cpp's server says


async def test_a_key_guards_the_v1_routes_each_api_its_own_way(start_sim, http: httpx.AsyncClient) -> None:
    sim = await start_sim(models=(MODEL,), api_key="sk-sim")
    chat = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    refused = await http.post(sim.url + "/v1/chat/completions", json=chat, headers={"authorization": "Bearer nope"})
    assert refused.status_code == 401 and "Incorrect API key provided: nope" in refused.json()["error"]["message"]
    assert (await http.post(sim.url + "/v1/chat/completions", json=chat,
                            headers={"authorization": "Bearer sk-sim"})).status_code == 200
    no_key = await http.get(sim.url + "/v1/models", headers=ANTHROPIC)
    assert no_key.status_code == 401 and no_key.json()["error"]["type"] == "authentication_error"
    assert (await http.get(sim.url + "/v1/models", headers={**ANTHROPIC, "x-api-key": "sk-sim"})).status_code == 200
    assert (await http.get(sim.url + "/api/tags")).status_code == 200  # Ollama's own API stays open


async def openai_text(http: httpx.AsyncClient, sim: RunningSimulator, prefix: str, **extra: Any) -> list[str]:
    body = {"model": MODEL, "stream": True, **extra, "messages": [
        {"role": "user", "content": "Tell me about Paris"}, *([{"role": "assistant", "content": prefix}] if prefix
                                                              else [])]}
    async with http.stream("POST", sim.url + "/v1/chat/completions", json=body) as resp:
        raw = (await resp.aread()).decode()
    chunks = [json.loads(f.removeprefix("data: ")) for f in raw.split("\n\n")[:-1] if f != "data: [DONE]"]
    return [c["choices"][0]["delta"]["content"] for c in chunks if c["choices"] and c["choices"][0]["delta"].get(
        "content")]


@pytest.mark.parametrize(("mode", "extra", "expected"), [
    ("continue", {}, " the capital of France and famous for its food."),
    ("flag", {"continue_final_message": True, "add_generation_prompt": False},
     " the capital of France and famous for its food."),
])
async def test_a_continuing_server_goes_on_from_the_partial_answer(start_sim, http: httpx.AsyncClient, mode: str,
                                                                    extra: dict[str, Any], expected: str) -> None:
    sim = await start_sim(models=(MODEL,), scripts=(RULE,), continuation=mode)
    assert "".join(await openai_text(http, sim, "")) == ANSWER
    assert "".join(await openai_text(http, sim, "Paris is", **extra)) == expected


async def test_an_echoing_server_repeats_the_partial_answer_split_over_two_deltas(
        start_sim, http: httpx.AsyncClient) -> None:
    sim = await start_sim(models=(MODEL,), scripts=(RULE,), continuation="echo")
    deltas = await openai_text(http, sim, "Paris is the")
    assert deltas[:3] == ["Paris ", "is the capital", " of"]  # llama.cpp glues the echo to the new text
    assert "".join(deltas) == "Paris is the" + ANSWER.removeprefix("Paris is the")


async def test_without_the_flag_or_in_ignore_mode_the_partial_answer_is_a_new_input(
        start_sim, http: httpx.AsyncClient) -> None:
    for mode in ("flag", "ignore"):
        sim = await start_sim(models=(MODEL,), scripts=(RULE,), continuation=mode)
        # The whole conversation still matches the rule: the answer starts over.
        assert "".join(await openai_text(http, sim, "Paris is")) == ANSWER
