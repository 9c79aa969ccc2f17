"""The official `openai` Python SDK, unchanged, against the whole mesh through Envoy
(`base_url=http://<ingress>/v1`): chat (whole and streamed), structured output, tools,
embeddings, models, errors, and a client that hangs up mid-stream cancelling the backend's
generation end to end."""

from __future__ import annotations

import base64
import json
import math
import re
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import openai
import pytest
from openai import OpenAI

from llmmesh.launcher.up import Mesh
from tests.gateway.keyed import WEATHER, one_cancelled_generation
from tests.support.e2e import wait_until
from tests.support.mesh import running_mesh

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("gateway_openai_sdk")]

MODEL = "smollm2:135m"
LONG = " ".join(["tick"] * 400)
RULES = [
    {"match": "CANCEL-ME", "response": LONG},
    {"match": "capital of France", "response": "Paris is the capital of France."},
]


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    with running_mesh(tmp_path_factory.mktemp("gateway-sdk"), backend="sim") as mesh:
        resp = httpx.put(f"{sim_url(mesh)}/_sim/scripts", json={"rules": RULES}, timeout=10)
        resp.raise_for_status()
        yield mesh


@pytest.fixture(scope="module")
def client(mesh: Mesh) -> Iterator[OpenAI]:
    # No SDK retries: a test must see the first answer.
    with OpenAI(base_url=f"http://{mesh.ingress}/v1", api_key="unused", max_retries=0, timeout=60) as client:
        yield client


def sim_url(mesh: Mesh) -> str:
    return f"http://127.0.0.1:{mesh.options.backend_port}"


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "system", "content": "You are terse."}, {"role": "user", "content": text}]


# --- models ------------------------------------------------------------------------------------


def test_models_are_listed_and_retrievable(client: OpenAI) -> None:
    models = client.models.list()
    ids = [m.id for m in models]
    assert {"smollm2:135m", "llama3.2:1b"} <= set(ids)
    assert all(m.object == "model" and m.owned_by == "llmmesh" for m in models)
    assert client.models.retrieve(MODEL).id == MODEL
    with pytest.raises(openai.NotFoundError) as err:
        client.models.retrieve("no-such-model")
    assert err.value.code == "model_not_found"


# --- chat --------------------------------------------------------------------------------------


def test_chat_completion_whole(client: OpenAI) -> None:
    resp = client.chat.completions.create(model=MODEL, messages=user("What is the capital of France?"),
                                          temperature=0, top_p=0.9, seed=7, user="ignored")
    assert resp.object == "chat.completion" and resp.id.startswith("chatcmpl-")
    assert resp.model == MODEL
    (choice,) = resp.choices
    assert choice.index == 0 and choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content == "Paris is the capital of France."
    assert choice.message.tool_calls is None
    usage = resp.usage
    assert usage is not None and usage.completion_tokens == 6
    assert usage.prompt_tokens > 0 and usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_length_limits_and_stop_sequences(client: OpenAI) -> None:
    short = client.chat.completions.create(model=MODEL, messages=user("Tell me a story."), max_tokens=3)
    assert short.choices[0].finish_reason == "length" and short.usage and short.usage.completion_tokens == 3
    newer = client.chat.completions.create(model=MODEL, messages=user("Tell me a story."), max_completion_tokens=2)
    assert newer.usage and newer.usage.completion_tokens == 2
    stopped = client.chat.completions.create(model=MODEL, messages=user("What is the capital of France?"),
                                             stop=["capital", "never"])
    assert stopped.choices[0].message.content == "Paris is the "
    assert stopped.choices[0].finish_reason == "stop"
    one = client.chat.completions.create(model=MODEL, messages=user("What is the capital of France?"), stop="France")
    assert one.choices[0].message.content == "Paris is the capital of "


def test_streamed_chat_chunks_roles_finish_reason_and_usage(client: OpenAI) -> None:
    messages = user("Tell me about load balancers.")
    whole = client.chat.completions.create(model=MODEL, messages=messages, seed=3, max_tokens=12)
    stream = client.chat.completions.create(model=MODEL, messages=messages, seed=3, max_tokens=12, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)  # the SDK stops at `data: [DONE]`
    assert chunks and all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1 and chunks[0].id.startswith("chatcmpl-")
    first, *middle, finish, usage = chunks
    assert first.choices[0].delta.role == "assistant"
    assert all(c.choices[0].delta.role is None for c in [*middle, finish])
    assert all(c.choices[0].finish_reason is None for c in [first, *middle])
    assert finish.choices[0].finish_reason == "length"
    text = "".join(c.choices[0].delta.content or "" for c in [first, *middle, finish])
    # Generation is deterministic for a seed: the stream says exactly what the whole answer said.
    assert text == whole.choices[0].message.content and text
    # One chunk per token, or fewer when the relay coalesced tokens that queued up; usage counts them.
    assert 1 <= len(middle) <= 12
    assert usage.choices == [] and usage.usage is not None
    assert usage.usage.completion_tokens == 12 and usage.usage.total_tokens == usage.usage.prompt_tokens + 12
    assert all(c.usage is None for c in chunks[:-1])


def test_stream_without_include_usage_has_no_usage_chunk(client: OpenAI) -> None:
    chunks = list(client.chat.completions.create(model=MODEL, messages=user("hi"), max_tokens=2, stream=True))
    assert chunks[-1].choices[0].finish_reason == "length"
    assert all(c.choices for c in chunks) and all(c.usage is None for c in chunks)


def test_json_schema_response_format_is_valid_json(client: OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "population": {"type": "integer"},
                       "tags": {"type": "array", "items": {"type": "string"}}},
        "required": ["city", "population", "tags"],
        "additionalProperties": False,
    }
    resp = client.chat.completions.create(
        model=MODEL, messages=user("Describe a city as JSON."),
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": schema, "strict": True}})
    jsonschema.validate(json.loads(resp.choices[0].message.content or ""), schema)
    loose = client.chat.completions.create(model=MODEL, messages=user("Any JSON object."),
                                           response_format={"type": "json_object"})
    assert isinstance(json.loads(loose.choices[0].message.content or ""), dict)


def test_tools_give_typed_tool_calls_and_take_results(client: OpenAI) -> None:
    messages: list[Any] = user("What is the weather in Paris?")
    resp = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER], tool_choice="auto")
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls or []
    assert call.type == "function" and call.id
    assert call.function.name == "get_weather"
    args = json.loads(call.function.arguments)
    assert isinstance(args, dict) and isinstance(args["city"], str)

    # The assistant's call and the tool's result go back in; now the model answers in text.
    messages += [choice.message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temp_c": 21})}]
    answer = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER], max_tokens=5)
    assert answer.choices[0].message.tool_calls is None
    assert answer.choices[0].message.content and answer.choices[0].finish_reason == "length"

    # tool_choice none: the tools are not offered, so the model answers in text.
    plain = client.chat.completions.create(model=MODEL, messages=user("What is the weather in Paris?"),
                                           tools=[WEATHER], tool_choice="none", max_tokens=4)
    assert plain.choices[0].message.tool_calls is None and plain.choices[0].finish_reason == "length"


def test_streamed_tool_calls(client: OpenAI) -> None:
    chunks = list(client.chat.completions.create(model=MODEL, messages=user("What is the weather in Paris?"),
                                                 tools=[WEATHER], stream=True))
    deltas = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
    assert [d.index for d in deltas] == [0]
    assert deltas[0].function and deltas[0].function.name == "get_weather" and deltas[0].id
    assert isinstance(json.loads(deltas[0].function.arguments or ""), dict)
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


# --- embeddings --------------------------------------------------------------------------------


def test_embeddings_float_base64_and_dimensions(client: OpenAI, mesh: Mesh) -> None:
    texts = ["the sky is blue", "the sky is blue today", "bananas are yellow"]
    resp = client.embeddings.create(model=MODEL, input=texts)  # the SDK asks for base64 and decodes it
    assert resp.object == "list" and [d.index for d in resp.data] == [0, 1, 2]
    vectors = [d.embedding for d in resp.data]
    assert all(len(v) == 384 for v in vectors)
    assert resp.usage.prompt_tokens > 0 and resp.usage.total_tokens == resp.usage.prompt_tokens

    def cos(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert cos(vectors[0], vectors[1]) > cos(vectors[0], vectors[2])
    floats = client.embeddings.create(model=MODEL, input="the sky is blue", encoding_format="float")
    assert floats.data[0].embedding == pytest.approx(vectors[0], abs=1e-6)
    short = client.embeddings.create(model=MODEL, input="the sky is blue", dimensions=256, encoding_format="float")
    assert len(short.data[0].embedding) == 256
    assert math.isclose(math.sqrt(sum(v * v for v in short.data[0].embedding)), 1.0, rel_tol=1e-5)
    # On the wire, base64 is little-endian float32, as OpenAI sends it.
    raw = httpx.post(f"http://{mesh.ingress}/v1/embeddings", timeout=30,
                     json={"model": MODEL, "input": "the sky is blue", "encoding_format": "base64"}).json()
    packed = base64.b64decode(raw["data"][0]["embedding"])
    assert list(struct.unpack(f"<{len(packed) // 4}f", packed)) == pytest.approx(vectors[0], abs=1e-6)


# --- errors ------------------------------------------------------------------------------------


def test_unknown_model_is_not_found(client: OpenAI) -> None:
    for stream in (False, True):
        with pytest.raises(openai.NotFoundError) as err:
            client.chat.completions.create(model="no-such-model", messages=user("hi"), stream=stream)
        assert err.value.status_code == 404
        assert (err.value.code, err.value.param, err.value.type) == ("model_not_found", "model",
                                                                      "invalid_request_error")
        assert "no-such-model" in err.value.message
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="no-such-model", input="x")


@pytest.mark.parametrize(("kwargs", "param"), [
    ({"temperature": 5}, "temperature"),
    ({"top_p": 0}, "top_p"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"max_completion_tokens": 100000}, "max_completion_tokens"),
    ({"n": 2}, "n"),
    ({"stop": ["x" * 100]}, "stop"),
    ({"tool_choice": "required", "tools": [WEATHER]}, "tool_choice"),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role"),
    ({"stream_options": {"include_usage": True}}, "stream_options"),
    ({"response_format": {"type": "yaml"}}, "response_format.type"),
])
def test_bad_parameters_are_bad_requests_naming_the_param(client: OpenAI, kwargs: dict[str, Any],
                                                          param: str) -> None:
    request: dict[str, Any] = {"model": MODEL, "messages": user("hi"), **kwargs}
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(**request)
    assert err.value.status_code == 400
    assert err.value.param == param, err.value.message
    assert err.value.type == "invalid_request_error"


def test_unknown_path_and_broken_json_answer_in_openai_shape(mesh: Mesh) -> None:
    base = f"http://{mesh.ingress}/v1"
    missing = httpx.get(f"{base}/assistants", timeout=10)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "unknown_url"
    broken = httpx.post(f"{base}/chat/completions", content=b"{not json", timeout=10,
                        headers={"content-type": "application/json"})
    assert broken.status_code == 400
    assert set(broken.json()["error"]) == {"message", "type", "param", "code"}


# --- cancellation ------------------------------------------------------------------------------


def test_closing_the_stream_cancels_the_generation_at_the_backend(client: OpenAI, mesh: Mesh) -> None:
    sim = sim_url(mesh)
    # 400 scripted tokens at 50 ms each: the generation would run for 20 s.
    httpx.put(f"{sim}/_sim/faults", json={"spec": "token_delay_ms=50"}, timeout=10).raise_for_status()
    try:
        httpx.post(f"{sim}/_sim/stats/reset", timeout=10).raise_for_status()
        stream = client.chat.completions.create(model=MODEL, messages=user("CANCEL-ME"), stream=True)
        received = []
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)
            if len(received) == 2:
                break
        stream.close()  # the client hangs up mid-stream
        assert [r.strip() for r in received] == ["tick", "tick"]
        stats = one_cancelled_generation(sim)
        (record,) = [r for r in stats["recent"] if r["outcome"] == "cancelled"]
        assert record["tokens"] < 400
    finally:
        httpx.delete(f"{sim}/_sim/faults", timeout=10)

    def disconnects() -> float:
        text = httpx.get(f"http://127.0.0.1:{mesh.gateway_port}/metrics", timeout=5).text
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("llmmesh_gateway_client_disconnects_total{"))

    wait_until(lambda: disconnects() >= 1, 10, "the gateway to count the client disconnect")


# --- the gateway's own port --------------------------------------------------------------------


def test_health_and_metrics_live_on_the_gateway_port_only(client: OpenAI, mesh: Mesh) -> None:
    client.models.list()
    gateway = f"http://127.0.0.1:{mesh.gateway_port}"
    assert httpx.get(f"{gateway}/healthz", timeout=5).json() == {"status": "ok"}
    text = httpx.get(f"{gateway}/metrics", timeout=5).text
    assert 'llmmesh_gateway_requests_total{method="GET",route="/v1/models",status="200"}' in text
    assert "llmmesh_gateway_request_duration_seconds_bucket" in text
    # The ingress routes only /v1/ and /playground to the gateway.
    for path in ("/metrics", "/healthz"):
        assert httpx.get(f"http://{mesh.ingress}{path}", timeout=5).status_code == 404


def test_the_readme_python_example_runs(mesh: Mesh, capsys: pytest.CaptureFixture[str]) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### Use it from an OpenAI SDK", 1)[1].split("\n### ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, re.S)
    exec(compile(code.replace("localhost:8080", mesh.ingress), "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert printed.strip() and len(printed.split()) > 2
