"""The OpenAI-compatible API: JSON and SSE shapes, tools, response_format, embeddings."""

from __future__ import annotations

import json
from typing import Any

import httpx
from simtest_helpers import MODEL
from simtest_jsonschema import validate

from llmmesh.simulator import RunningSimulator

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}]


async def sse_events(http: httpx.AsyncClient, url: str, body: dict[str, Any]) -> tuple[httpx.Response, list[str]]:
    """Raw ``data:`` payloads, checking the SSE framing (``data: ...`` then a blank line)."""
    async with http.stream("POST", url, json=body) as resp:
        raw = (await resp.aread()).decode()
    assert raw.endswith("\n\n")
    frames = raw.split("\n\n")[:-1]
    assert all(f.startswith("data: ") for f in frames)
    return resp, [f.removeprefix("data: ") for f in frames]


async def test_non_stream_completion(sim: RunningSimulator, http: httpx.AsyncClient) -> None:
    body = (await http.post(sim.url + "/v1/chat/completions", json={"model": MODEL, "messages": MESSAGES})).json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant" and len(choice["message"]["content"].split()) == 8
    assert choice["finish_reason"] == "stop"
    usage = body["usage"]
    assert usage["completion_tokens"] == 8 and usage["total_tokens"] == usage["prompt_tokens"] + 8

    limited = await http.post(
        sim.url + "/v1/chat/completions", json={"model": MODEL, "messages": MESSAGES, "max_tokens": 2, "seed": 5}
    )
    assert limited.json()["choices"][0]["finish_reason"] == "length"
    assert limited.json()["usage"]["completion_tokens"] == 2


async def test_sse_stream_shape_usage_and_done(sim: RunningSimulator, http: httpx.AsyncClient) -> None:
    body = {"model": MODEL, "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}}
    resp, events = await sse_events(http, sim.url + "/v1/chat/completions", body)
    assert resp.headers["content-type"] == "text/event-stream"
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    content = chunks[:8]
    assert all(c["object"] == "chat.completion.chunk" and c["choices"][0]["finish_reason"] is None for c in content)
    assert chunks[8]["choices"][0]["finish_reason"] == "stop"
    assert chunks[9]["choices"] == [] and chunks[9]["usage"]["completion_tokens"] == 8
    assert len({c["id"] for c in chunks}) == 1

    text = "".join(c["choices"][0]["delta"]["content"] for c in content)
    whole = (await http.post(sim.url + "/v1/chat/completions", json={"model": MODEL, "messages": MESSAGES})).json()
    assert whole["choices"][0]["message"]["content"] == text

    _, no_usage = await sse_events(http, sim.url + "/v1/chat/completions", {**body, "stream_options": None})
    assert len(no_usage) == 10 and "usage" not in json.loads(no_usage[-2])


async def test_tools_give_json_string_arguments(sim: RunningSimulator, http: httpx.AsyncClient) -> None:
    params = {
        "type": "object",
        "properties": {"query": {"type": "string", "minLength": 3}, "limit": {"type": "integer", "maximum": 5}},
        "required": ["query", "limit"],
    }
    tools = [{"type": "function", "function": {"name": "search_docs", "parameters": params}}]
    body = {"model": MODEL, "messages": [{"role": "user", "content": "search docs"}], "tools": tools}
    choice = (await http.post(sim.url + "/v1/chat/completions", json=body)).json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["type"] == "function" and call["function"]["name"] == "search_docs"
    validate(json.loads(call["function"]["arguments"]), params)

    _, events = await sse_events(http, sim.url + "/v1/chat/completions", {**body, "stream": True})
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"] == "search_docs"
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


async def test_response_format(sim: RunningSimulator, http: httpx.AsyncClient) -> None:
    schema = {
        "type": "object",
        "properties": {"winner": {"type": "string", "enum": ["a", "b"]}, "margin": {"type": "number"}},
        "required": ["winner", "margin"],
        "additionalProperties": False,
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "verdict", "schema": schema, "strict": True}}
    body = {"model": MODEL, "messages": MESSAGES, "response_format": fmt}
    content = (await http.post(sim.url + "/v1/chat/completions", json=body)).json()["choices"][0]["message"]["content"]
    validate(json.loads(content), schema)

    obj = {"model": MODEL, "messages": MESSAGES, "response_format": {"type": "json_object"}}
    content = (await http.post(sim.url + "/v1/chat/completions", json=obj)).json()["choices"][0]["message"]["content"]
    assert isinstance(json.loads(content), dict)


async def test_errors_models_and_embeddings(sim: RunningSimulator, http: httpx.AsyncClient) -> None:
    missing = await http.post(sim.url + "/v1/chat/completions", json={"model": "ghost", "messages": MESSAGES})
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"
    bad = await http.post(sim.url + "/v1/chat/completions", json={"model": MODEL, "messages": []})
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"

    models = (await http.get(sim.url + "/v1/models")).json()
    assert models["object"] == "list" and [m["id"] for m in models["data"]] == ["smollm2:135m", "llama3.2:1b"]

    emb = (await http.post(sim.url + "/v1/embeddings", json={"model": MODEL, "input": ["a", "b c"]})).json()
    assert emb["object"] == "list" and [d["index"] for d in emb["data"]] == [0, 1]
    assert len(emb["data"][0]["embedding"]) == 384 and emb["usage"]["prompt_tokens"] == 3
    native = (await http.post(sim.url + "/api/embed", json={"model": MODEL, "input": "a"})).json()
    assert native["embeddings"][0] == emb["data"][0]["embedding"]  # same function behind both APIs
