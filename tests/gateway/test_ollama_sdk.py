"""The official `ollama` Python client, unchanged, against the whole mesh through Envoy (host =
the ingress) with API keys on: models listed, shown and running, chat and generate (whole and
NDJSON streams ending in Ollama's final chunk), options, `format`, tools, embeddings, errors in
Ollama's shape and status, model management refused with 501, and /api/v1/... still transcoded."""

from __future__ import annotations

import json
from typing import Any

import httpx
import jsonschema
import ollama
import pytest

from tests.gateway.keyed import KEYED_GROUP, WEATHER, KeyedMesh, one_cancelled_generation
from tests.support.e2e import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group(KEYED_GROUP)]

MODEL = "smollm2:135m"
FINAL_FIELDS = ("total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration", "eval_count",
                "eval_duration")


def client(keyed: KeyedMesh, key: str | None = "app") -> ollama.Client:
    headers = keyed.headers(key) if key else {}
    return ollama.Client(host=keyed.url, headers=headers, timeout=60)


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "system", "content": "You are terse."}, {"role": "user", "content": text}]


def assert_final(chunk: Any, eval_count: int) -> None:
    assert chunk.done is True and chunk.done_reason in ("stop", "length")
    assert chunk.eval_count == eval_count and chunk.prompt_eval_count > 0
    assert chunk.total_duration > 0 and chunk.load_duration == 0
    assert chunk.prompt_eval_duration + chunk.eval_duration == chunk.total_duration


# --- models ------------------------------------------------------------------------------------


def test_models_are_listed_shown_and_running(keyed_mesh: KeyedMesh) -> None:
    ol = client(keyed_mesh)
    names = {m.model for m in ol.list().models}
    assert {"smollm2:135m", "llama3.2:1b"} <= names
    shown = ol.show(MODEL)
    assert shown.capabilities == ["completion", "tools"]  # the simulator's models call tools natively
    assert shown.modelinfo is not None and shown.modelinfo["llmmesh.context_length"] == 4096
    ol.chat(model=MODEL, messages=user("hi"), options={"num_predict": 1})  # the backend loads it
    running = wait_until(lambda: [m for m in ol.ps().models if m.model == MODEL], 15, "the model to show as loaded")
    assert running[0].context_length == 4096
    with pytest.raises(ollama.ResponseError) as err:
        ol.show("no-such-model")
    assert err.value.status_code == 404


def test_version_and_model_management_answer_like_ollama(keyed_mesh: KeyedMesh) -> None:
    version = httpx.get(f"{keyed_mesh.url}/api/version", timeout=10)
    assert version.status_code == 200 and version.json()["version"].count(".") == 2
    ol = client(keyed_mesh)
    for attempt in (lambda: ol.pull(MODEL), lambda: ol.delete(MODEL), lambda: ol.copy(MODEL, "x"),
                    lambda: ol.push(MODEL)):
        with pytest.raises(ollama.ResponseError) as err:
            attempt()
        assert err.value.status_code == 501 and "managed on the backends" in err.value.error


# --- chat and generate ---------------------------------------------------------------------------


def test_chat_whole_and_streamed(keyed_mesh: KeyedMesh) -> None:
    ol = client(keyed_mesh)
    whole = ol.chat(model=MODEL, messages=user("What is the capital of France?"), stream=False)
    assert whole.message.role == "assistant" and whole.message.content == "Paris is the capital of France."
    assert whole.model == MODEL
    assert_final(whole, 6)
    parts = list(ol.chat(model=MODEL, messages=user("What is the capital of France?"), stream=True))
    *tokens, final = parts
    assert "".join(p.message.content for p in tokens) == whole.message.content
    assert all(p.done is False for p in tokens) and final.message.content == ""
    assert_final(final, 6)
    # On the wire: NDJSON, one object per line, the last one final; a stream unless asked otherwise.
    raw = httpx.post(f"{keyed_mesh.url}/api/chat", headers=keyed_mesh.headers("app"), timeout=30,
                     json={"model": MODEL, "messages": user("What is the capital of France?")})
    assert raw.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in raw.text.splitlines()]
    assert len(lines) == 7 and lines[-1]["done"] is True and set(FINAL_FIELDS) <= set(lines[-1])


def test_generate_whole_and_streamed_with_options(keyed_mesh: KeyedMesh) -> None:
    ol = client(keyed_mesh)
    options = {"num_predict": 5, "seed": 7, "temperature": 0.2, "top_p": 0.9, "top_k": 20, "num_ctx": 2048}
    whole = ol.generate(model=MODEL, prompt="Tell me a story.", system="Be brief.", options=options, stream=False,
                        keep_alive="5m")
    assert whole.done_reason == "length" and whole.response
    assert_final(whole, 5)
    *tokens, final = list(ol.generate(model=MODEL, prompt="Tell me a story.", system="Be brief.", options=options,
                                      stream=True))
    assert "".join(t.response for t in tokens) == whole.response  # the same seed: the same answer
    # Tokens that queue up while the client reads arrive joined: the text and the count are the contract.
    assert tokens and final.done_reason == "length"
    assert_final(final, 5)
    stopped = ol.generate(model=MODEL, prompt="What is the capital of France?", options={"stop": ["capital"]})
    assert stopped.response == "Paris is the "
    # No prompt: Ollama's way to load (keep_alive 0: unload) a model; nothing is generated.
    assert ol.generate(model=MODEL, prompt="").done_reason == "load"
    assert ol.generate(model=MODEL, prompt="", keep_alive=0).done_reason == "unload"


def test_format_constrains_the_answer(keyed_mesh: KeyedMesh) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
              "required": ["city", "population"]}
    answer = client(keyed_mesh).chat(model=MODEL, messages=user("Describe a city as JSON."), format=schema)
    jsonschema.validate(json.loads(answer.message.content), schema)
    loose = client(keyed_mesh).generate(model=MODEL, prompt="Any JSON object.", format="json")
    assert isinstance(json.loads(loose.response), dict)


def test_tool_calls_come_back_in_the_message_and_results_go_in(keyed_mesh: KeyedMesh) -> None:
    ol = client(keyed_mesh)
    messages: list[Any] = user("What is the weather in Paris?")
    first = ol.chat(model=MODEL, messages=messages, tools=[WEATHER])
    (call,) = first.message.tool_calls or []
    assert call.function.name == "get_weather" and isinstance(call.function.arguments["city"], str)
    assert first.done_reason == "stop"
    streamed = [p for p in ol.chat(model=MODEL, messages=messages, tools=[WEATHER], stream=True)
                if p.message.tool_calls]
    assert [c.function.name for p in streamed for c in p.message.tool_calls or []] == ["get_weather"]
    # The call and its result go back in (Ollama names the tool, not a call id); the model answers.
    messages += [first.message, {"role": "tool", "tool_name": "get_weather", "content": '{"temp_c": 21}'}]
    answer = ol.chat(model=MODEL, messages=messages, tools=[WEATHER], options={"num_predict": 4})
    assert not answer.message.tool_calls and answer.message.content and answer.done_reason == "length"


# --- embeddings --------------------------------------------------------------------------------


def test_embed_and_legacy_embeddings(keyed_mesh: KeyedMesh) -> None:
    ol = client(keyed_mesh)
    resp = ol.embed(model=MODEL, input=["the sky is blue", "the sky is blue today", "bananas are yellow"])
    vectors = resp.embeddings
    assert [len(v) for v in vectors] == [384, 384, 384] and resp.prompt_eval_count > 0

    def cos(a: Any, b: Any) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert cos(vectors[0], vectors[1]) > cos(vectors[0], vectors[2])
    short = ol.embed(model=MODEL, input="the sky is blue", dimensions=128).embeddings[0]
    assert len(short) == 128 and abs(sum(v * v for v in short) - 1) < 1e-5
    legacy = ol.embeddings(model=MODEL, prompt="the sky is blue").embedding
    assert legacy == pytest.approx(vectors[0], abs=1e-6)


# --- errors and keys ---------------------------------------------------------------------------


def test_errors_have_ollamas_shape_and_status(keyed_mesh: KeyedMesh) -> None:
    ol = client(keyed_mesh)
    with pytest.raises(ollama.ResponseError) as err:
        ol.chat(model="no-such-model", messages=user("hi"), stream=False)
    assert err.value.status_code == 404 and "no-such-model" in err.value.error
    with pytest.raises(ollama.ResponseError) as err:
        list(ol.generate(model="no-such-model", prompt="hi", stream=True))
    assert err.value.status_code == 404  # before the stream starts: a status, not a line
    bad = httpx.post(f"{keyed_mesh.url}/api/generate", headers=keyed_mesh.headers("app"), timeout=10,
                     json={"model": MODEL, "prompt": "hi", "options": {"temperature": "hot"}})
    assert bad.status_code == 400 and set(bad.json()) == {"error"} and "temperature" in bad.json()["error"]
    too_hot = httpx.post(f"{keyed_mesh.url}/api/chat", headers=keyed_mesh.headers("app"), timeout=10,
                         json={"model": MODEL, "messages": user("hi"), "options": {"temperature": 9}})
    assert too_hot.status_code == 400 and "temperature" in too_hot.json()["error"]  # the mesh's own limit
    broken = httpx.post(f"{keyed_mesh.url}/api/chat", headers=keyed_mesh.headers("app"), timeout=10,
                        content=b"{not json")
    assert broken.status_code == 400 and set(broken.json()) == {"error"}


def test_api_keys_apply_as_at_the_openai_front_door(keyed_mesh: KeyedMesh) -> None:
    with pytest.raises(ollama.ResponseError) as err:
        client(keyed_mesh, key=None).list()
    assert err.value.status_code == 401 and "API key" in err.value.error
    with pytest.raises(ollama.ResponseError) as err:
        client(keyed_mesh, key="judge").chat(model=MODEL, messages=user("hi"))
    assert err.value.status_code == 403
    assert client(keyed_mesh, key="admin").list().models


def test_rest_paths_under_api_v1_are_still_transcoded(keyed_mesh: KeyedMesh) -> None:
    # The gateway gets /api/<name> exactly; /api/v1/... stays gRPC-JSON transcoding.
    rest = httpx.get(f"{keyed_mesh.url}/api/v1/inference/models", headers=keyed_mesh.headers("app"), timeout=10)
    assert rest.status_code == 200 and rest.json()["models"] and "default_model" in rest.json()
    unknown = httpx.post(f"{keyed_mesh.url}/api/chatty", headers=keyed_mesh.headers("app"), timeout=10, json={})
    assert unknown.status_code == 404


def test_closing_the_stream_cancels_the_generation_at_the_backend(keyed_mesh: KeyedMesh) -> None:
    sim = keyed_mesh.sim
    httpx.post(f"{sim}/_sim/stats/reset", timeout=10).raise_for_status()
    stream = client(keyed_mesh).generate(model=MODEL, prompt="SLOW-ANSWER", stream=True)  # 40 tokens, 50 ms each
    received = [next(stream).response, next(stream).response]
    stream.close()  # the client hangs up mid-stream
    assert [r.strip() for r in received] == ["tick", "tick"]
    one_cancelled_generation(sim)
