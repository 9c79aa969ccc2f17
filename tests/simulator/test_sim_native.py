"""Ollama native API, validated with the official ``ollama`` client's pydantic types."""

from __future__ import annotations

import json
import math

import httpx
import ollama
import pytest
from simtest_helpers import MODEL, MakeClient, StartSim
from simtest_jsonschema import validate

from llmmesh.simulator import RunningSimulator

USER = [{"role": "user", "content": "Tell me about meshes."}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
        },
    },
}


async def test_root_version_tags_ps(
    oc: MakeClient, sim: RunningSimulator, http: httpx.AsyncClient, start_sim: StartSim
) -> None:
    root = await http.get(sim.url + "/")
    assert root.status_code == 200 and root.text == "Ollama is running"
    assert (await http.get(sim.url + "/api/version")).json()["version"]
    listed = await oc(sim).list()
    assert [m.model for m in listed.models] == ["smollm2:135m", "llama3.2:1b"]
    assert all(m.details and m.details.format == "gguf" and m.size and m.digest for m in listed.models)
    raw = (await http.get(sim.url + "/api/tags")).json()["models"][0]
    assert raw["name"] == raw["model"] == MODEL

    # A model is "loaded" (in /api/ps) only after first use; config can preload.
    assert (await oc(sim).ps()).models == []
    await oc(sim).generate(model="llama3.2:1b", prompt="hi")
    assert [m.model for m in (await oc(sim).ps()).models] == ["llama3.2:1b"]
    preloaded = await start_sim(preload=(MODEL,))
    assert [m.name for m in (await oc(preloaded).ps()).models] == [MODEL]


async def test_chat_stream_is_ndjson_with_final_counters(
    oc: MakeClient, sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    async with http.stream("POST", sim.url + "/api/chat", json={"model": MODEL, "messages": USER}) as resp:
        assert resp.headers["content-type"] == "application/x-ndjson"
        lines = [json.loads(line) async for line in resp.aiter_lines() if line]
    assert len(lines) == 9  # 8 tokens + final
    assert all(not ln["done"] and ln["message"]["role"] == "assistant" for ln in lines[:-1])

    parts = [p async for p in await oc(sim).chat(model=MODEL, messages=USER, stream=True)]
    final = parts[-1]
    assert final.done and final.done_reason == "stop"
    assert final.eval_count == 8 and final.prompt_eval_count and final.prompt_eval_count > 0
    for counter in ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration"):
        assert isinstance(final[counter], int) and final[counter] > 0
    tokens = [p.message.content for p in parts[:-1]]
    assert all(t.startswith(" ") and len(t.split()) == 1 for t in tokens)

    whole = await oc(sim).chat(model=MODEL, messages=USER, stream=False)
    assert whole.done and whole.message.content == "".join(tokens)  # same input, same words


async def test_generate_stream_and_num_predict_length(oc: MakeClient, sim: RunningSimulator) -> None:
    parts = [p async for p in await oc(sim).generate(model=MODEL, prompt="Once upon", stream=True)]
    assert parts[-1].done_reason == "stop" and parts[-1].eval_count == 8 and parts[-1].context
    cut = await oc(sim).generate(model=MODEL, prompt="Once upon", options={"num_predict": 3})
    assert cut.done_reason == "length" and cut.eval_count == 3
    assert cut.response == "".join(p.response for p in parts[:3])


async def test_stop_sequence_truncates(oc: MakeClient, sim: RunningSimulator) -> None:
    full = (await oc(sim).generate(model=MODEL, prompt="stop test")).response
    stop_word = full.split()[3]
    cut = await oc(sim).generate(model=MODEL, prompt="stop test", options={"stop": [stop_word]})
    assert cut.done_reason == "stop"
    assert cut.response == full[: full.index(stop_word)]


async def test_seed_determinism(oc: MakeClient, sim: RunningSimulator) -> None:
    async def say(seed: int, prompt: str = "hello") -> str:
        r = await oc(sim).chat(
            model=MODEL, messages=[{"role": "user", "content": prompt}], options={"seed": seed, "temperature": 0.7}
        )
        return r.message.content or ""

    assert await say(42) == await say(42)
    assert await say(42) != await say(43)
    assert await say(42) != await say(42, "goodbye")


async def test_format_json_schema_is_valid_and_streamed_in_chunks(oc: MakeClient, sim: RunningSimulator) -> None:
    schema = {
        "type": "object",
        "properties": {
            "verdict": {"type": "string", "enum": ["pass", "fail"]},
            "score": {"type": "integer", "minimum": 1, "maximum": 10},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "reasons": {"type": "array", "items": {"type": "string"}, "minItems": 3},
            "meta": {
                "type": "object",
                "properties": {"ok": {"type": "boolean"}},
                "required": ["ok"],
            },
        },
        "required": ["verdict", "score", "reasons", "meta"],
    }
    parts = [p async for p in await oc(sim).chat(model=MODEL, messages=USER, format=schema, stream=True)]
    assert len(parts) > 3  # streamed in several chunks
    doc = json.loads("".join(p.message.content or "" for p in parts))
    validate(doc, schema)
    assert len(doc["reasons"]) >= 3 and 1 <= doc["score"] <= 10

    plain = await oc(sim).generate(model=MODEL, prompt="json please", format="json")
    assert isinstance(json.loads(plain.response), dict)


async def test_tools_answer_with_tool_calls_then_text(oc: MakeClient, sim: RunningSimulator) -> None:
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = await oc(sim).chat(model=MODEL, messages=messages, tools=[WEATHER_TOOL])
    calls = first.message.tool_calls
    assert calls and calls[0].function.name == "get_weather"
    validate(dict(calls[0].function.arguments), WEATHER_TOOL["function"]["parameters"])

    messages += [
        {"role": "assistant", "content": "", "tool_calls": [c.model_dump() for c in calls]},
        {"role": "tool", "content": "18 degrees and sunny"},
    ]
    second = await oc(sim).chat(model=MODEL, messages=messages, tools=[WEATHER_TOOL])
    assert not second.message.tool_calls and second.message.content

    streamed = [
        p async for p in await oc(sim).chat(model=MODEL, messages=messages[:1], tools=[WEATHER_TOOL], stream=True)
    ]
    assert any(p.message.tool_calls for p in streamed) and streamed[-1].done


async def test_unknown_model_404_and_malformed_400(
    oc: MakeClient, sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    with pytest.raises(ollama.ResponseError) as err:
        await oc(sim).chat(model="nope:1b", messages=USER)
    assert err.value.status_code == 404
    assert err.value.error == 'model "nope:1b" not found, try pulling it first'

    bad = await http.post(sim.url + "/api/chat", content=b"{not json")
    assert bad.status_code == 400 and "error" in bad.json()
    no_model = await http.post(sim.url + "/api/generate", json={"prompt": "x"})
    assert no_model.status_code == 400 and no_model.json()["error"] == "model is required"
    bad_opts = await http.post(
        sim.url + "/api/generate", json={"model": MODEL, "prompt": "x", "options": {"seed": "a"}}
    )
    assert bad_opts.status_code == 400


async def test_latest_tag_and_load_only(oc: MakeClient, start_sim: StartSim, http: httpx.AsyncClient) -> None:
    sim = await start_sim(models=("llama3.2",))
    named = await oc(sim).generate(model="llama3.2:latest", prompt="x")
    assert named.done
    loaded = (await http.post(sim.url + "/api/generate", json={"model": "llama3.2"})).json()
    assert loaded["done"] and loaded["done_reason"] == "load"
    unloaded = (await http.post(sim.url + "/api/chat", json={"model": "llama3.2", "keep_alive": 0})).json()
    assert unloaded["done_reason"] == "unload"
    assert (await oc(sim).ps()).models == []


async def test_embed_is_deterministic_normalised_and_similarity_aware(oc: MakeClient, sim: RunningSimulator) -> None:
    texts = ["the cat sat on the mat", "the cat sat on a mat", "quarterly tax filing deadline"]
    first = await oc(sim).embed(model=MODEL, input=texts)
    again = await oc(sim).embed(model=MODEL, input=texts[0])
    assert len(first.embeddings) == 3 and all(len(v) == 384 for v in first.embeddings)
    assert list(again.embeddings[0]) == list(first.embeddings[0])
    assert all(math.isclose(sum(x * x for x in v), 1.0, rel_tol=1e-9) for v in first.embeddings)

    def cos(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    a, b, c = (list(v) for v in first.embeddings)
    assert cos(a, b) > 0.5 > cos(a, c)
    assert first.prompt_eval_count and first.prompt_eval_count > 0
    short = await oc(sim).embed(model=MODEL, input="x", dimensions=64)
    assert len(short.embeddings[0]) == 64
