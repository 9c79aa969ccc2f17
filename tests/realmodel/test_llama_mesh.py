"""The real-model tier: the whole mesh (Envoy ingress → inference service → Envoy egress →
llama.cpp `llama-server` running SmolLM2-135M) with real tokens.

One mesh (conftest.py) serves this module and test_patterns_llama.py. SmolLM2 decodes ~100 tokens/s
on 2 shared cores, so every request asks for few tokens; greedy decoding (temperature 0, fixed seed)
keeps the outputs repeatable.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import jsonschema
import pytest

from llmmesh.common.structs import dict_to_struct
from llmmesh.common.v1 import common_pb2
from llmmesh.inference.v1 import inference_service_pb2 as pb
from llmmesh.inference.v1 import inference_service_pb2_grpc as pb_grpc
from llmmesh.launcher.backend_choice import SMOLLM2_MODEL
from llmmesh.launcher.up import Mesh

pytestmark = [pytest.mark.realmodel, pytest.mark.xdist_group("realmodel")]

DEADLINE_S = 60.0
SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}, "confidence": {"type": "integer", "minimum": 1, "maximum": 5}},
    "required": ["answer", "confidence"],
}
# A prompt SmolLM2 keeps going on: greedy decoding never ends it within CONTROL_TOKENS.
COUNTING = "Count from 1 to 300, separated by commas."
CONTROL_TOKENS = 48


def greedy(max_tokens: int) -> common_pb2.GenerationOptions:
    return common_pb2.GenerationOptions(max_tokens=max_tokens, temperature=0.0, seed=7)


def user(text: str) -> pb.Message:
    return pb.Message(role=pb.ROLE_USER, content=text)


@pytest.fixture
async def stub(mesh: Mesh) -> AsyncIterator[pb_grpc.InferenceServiceStub]:
    async with grpc.aio.insecure_channel(mesh.ingress) as channel:
        yield pb_grpc.InferenceServiceStub(channel)


@pytest.fixture
async def rest(mesh: Mesh) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://{mesh.ingress}", timeout=DEADLINE_S, trust_env=False) as client:
        yield client


@pytest.fixture
async def llama(mesh: Mesh) -> AsyncIterator[httpx.AsyncClient]:
    """llama-server itself, bypassing the mesh: to watch what the model is doing."""
    url = f"http://127.0.0.1:{mesh.options.backend_port}"
    async with httpx.AsyncClient(base_url=url, timeout=5.0, trust_env=False) as client:
        yield client


async def _metric(llama: httpx.AsyncClient, name: str) -> float:
    resp = await llama.get("/metrics")
    assert resp.status_code == 200, resp.text
    for line in resp.text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in llama-server's /metrics:\n{resp.text}")


def _processing(slots: list[dict[str, Any]]) -> bool:
    return any(s["is_processing"] for s in slots)


def _assert_llama_done(done: pb.GenerationDone) -> None:
    assert done.backend == "llama"
    assert done.model == SMOLLM2_MODEL
    assert done.prompt_tokens > 0
    assert done.output_tokens > 0
    assert not done.failed_over


async def test_list_models_over_rest_names_smollm2_on_llama(rest: httpx.AsyncClient) -> None:
    resp = await rest.get("/api/v1/inference/models")
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    models = {m["name"]: m for m in doc["models"]}
    assert SMOLLM2_MODEL in models, doc
    assert models[SMOLLM2_MODEL]["backends"] == ["llama"]
    assert doc["default_model"] == SMOLLM2_MODEL
    # What the patterns fit their transcripts into, and how they call tools: llama-server's
    # per-slot context, and prompted calls (SmolLM2's chat template has no tools).
    assert 0 < models[SMOLLM2_MODEL]["context_window"] <= 8192, models
    assert models[SMOLLM2_MODEL]["native_tools"] is False, models


async def test_generate_streams_real_tokens_over_grpc(stub: pb_grpc.InferenceServiceStub) -> None:
    req = pb.GenerateRequest(prompt="Name three colours of the rainbow.", options=greedy(32))
    events = [ev async for ev in stub.Generate(req, timeout=DEADLINE_S)]
    kinds = [ev.WhichOneof("event") for ev in events]
    assert "error" not in kinds, events
    assert kinds.count("done") == 1 and kinds[-1] == "done", kinds
    deltas = [ev.delta.text for ev in events if ev.WhichOneof("event") == "delta"]
    assert len(deltas) >= 3 and all(deltas), deltas
    assert "".join(deltas).strip()
    done = events[-1].done
    _assert_llama_done(done)
    assert done.done_reason in ("stop", "length")
    assert done.output_tokens <= 32
    print(f"grpc generate: {done.output_tokens} tokens, {done.tokens_per_second:.0f} tokens/s")


async def test_generate_streams_server_sent_events_over_rest(rest: httpx.AsyncClient) -> None:
    body = {"prompt": "Why is the sky blue?", "options": {"max_tokens": 24, "temperature": 0, "seed": 7}}
    frames: list[dict[str, Any]] = []
    async with rest.stream("POST", "/api/v1/inference/generate", json=body) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        async for line in resp.aiter_lines():
            if line.startswith("data:"):
                frames.append(json.loads(line[5:]))
            else:
                assert not line.strip(), f"unexpected SSE line {line!r}"
    assert len(frames) >= 4, frames
    assert all("delta" in f for f in frames[:-1]), frames
    assert sum(1 for f in frames if "done" in f) == 1
    done = frames[-1]["done"]
    assert done["backend"] == "llama" and done["model"] == SMOLLM2_MODEL
    assert int(done["output_tokens"]) > 0 and int(done["prompt_tokens"]) > 0
    assert "".join(f["delta"].get("text", "") for f in frames[:-1]).strip()


CAPITAL = "What is the capital of France? Give a short answer and your confidence from 1 to 5."


async def test_structured_output_over_grpc_validates_against_the_schema(stub: pb_grpc.InferenceServiceStub) -> None:
    req = pb.CompleteChatRequest(messages=[user(CAPITAL)], options=greedy(48), json_schema=dict_to_struct(SCHEMA))
    resp = await stub.CompleteChat(req, timeout=DEADLINE_S)
    _assert_llama_done(resp.done)
    assert resp.done.done_reason == "stop", resp  # the JSON closed before the token limit
    doc = json.loads(resp.message.content)
    jsonschema.validate(doc, SCHEMA)
    assert resp.message.role == pb.ROLE_ASSISTANT


async def test_structured_output_over_rest_validates_against_the_schema(rest: httpx.AsyncClient) -> None:
    body = {
        "messages": [{"role": "ROLE_USER", "content": CAPITAL}],
        "options": {"max_tokens": 48, "temperature": 0, "seed": 7},
        "json_schema": SCHEMA,
    }
    resp = await rest.post("/api/v1/inference/chat", json=body)
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert out["done"]["backend"] == "llama" and out["done"]["done_reason"] == "stop", out
    jsonschema.validate(json.loads(out["message"]["content"]), SCHEMA)


async def test_cancelling_a_stream_stops_llama_server_generating(stub: pb_grpc.InferenceServiceStub,
                                                                 llama: httpx.AsyncClient) -> None:
    # Control: left alone, greedy decoding of this prompt runs into the token limit.
    control = [ev async for ev in stub.Generate(
        pb.GenerateRequest(prompt=COUNTING, options=greedy(CONTROL_TOKENS)), timeout=DEADLINE_S)]
    assert control[-1].done.done_reason == "length", control[-1]
    assert control[-1].done.output_tokens == CONTROL_TOKENS

    predicted_before = await _metric(llama, "llamacpp:tokens_predicted_total")
    call = stub.Generate(pb.GenerateRequest(prompt=COUNTING, options=greedy(400)), timeout=DEADLINE_S)
    received = 0
    async for ev in call:
        assert ev.WhichOneof("event") == "delta", ev
        received += 1
        if received == 5:
            break
    slots = (await llama.get("/slots")).json()
    assert _processing(slots), slots  # mid-generation when we cancel
    call.cancel()
    assert await call.code() == grpc.StatusCode.CANCELLED

    deadline = time.monotonic() + 5.0
    while _processing(slots := (await llama.get("/slots")).json()):
        assert time.monotonic() < deadline, f"llama-server still generating after the cancel: {slots}"
        await asyncio.sleep(0.05)
    assert await _metric(llama, "llamacpp:requests_processing") == 0
    decoded = await _metric(llama, "llamacpp:tokens_predicted_total") - predicted_before
    # The same greedy run went on for CONTROL_TOKENS when not cancelled, and would have run to 400.
    assert 5 <= decoded < CONTROL_TOKENS, decoded
    print(f"cancelled after 5 tokens received; llama-server decoded {decoded:.0f} of max 400")


async def test_chat_two_turns_on_one_stream_both_end_with_done(stub: pb_grpc.InferenceServiceStub) -> None:
    outbox: asyncio.Queue[pb.ChatRequest | None] = asyncio.Queue()

    async def requests() -> AsyncIterator[pb.ChatRequest]:
        while (req := await outbox.get()) is not None:
            yield req

    call = stub.Chat(requests(), timeout=DEADLINE_S)
    dones: list[pb.GenerationDone] = []
    for turn, text in ((1, "My name is Ada. Say hello to me."), (2, "What is my name?")):
        await outbox.put(pb.ChatRequest(turn=pb.ChatTurn(messages=[user(text)], options=greedy(24))))
        deltas = []
        while (ev := await call.read()).WhichOneof("event") != "done":
            assert ev.WhichOneof("event") == "delta" and ev.turn == turn, ev
            deltas.append(ev.delta.text)
        assert ev.turn == turn
        assert "".join(deltas).strip(), f"turn {turn} produced no text"
        _assert_llama_done(ev.done)
        dones.append(ev.done)
    await outbox.put(None)
    assert await call.read() is grpc.aio.EOF
    assert await call.code() == grpc.StatusCode.OK
    # The server kept the history: turn 2's prompt holds turn 1's exchange.
    assert dones[1].prompt_tokens >= dones[0].prompt_tokens + dones[0].output_tokens, dones


async def test_embed_returns_one_vector_per_input(stub: pb_grpc.InferenceServiceStub) -> None:
    resp = await stub.Embed(pb.EmbedRequest(inputs=["a cat sat on the mat", "stock markets fell"]),
                            timeout=DEADLINE_S)
    assert resp.backend == "llama" and resp.model == SMOLLM2_MODEL
    assert len(resp.embeddings) == 2
    first, second = (list(e.values) for e in resp.embeddings)
    assert len(first) == len(second) >= 64
    assert any(first) and first != second
    assert resp.prompt_tokens > 0
