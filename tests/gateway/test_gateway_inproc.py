"""The gateway in process, in front of an in-process inference service over real simulators, with
the official `openai` SDK as the client: failures in the middle of a stream, API keys passed
through to the services, overload as 429 with Retry-After (at once, or after waiting in the queue:
queue updates are not relayed), the admission priority header, deadlines, and its metrics."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import httpx
import openai
import pytest
from openai import AsyncOpenAI
from prometheus_client import CollectorRegistry

from llmmesh.framework.auth import hash_key
from llmmesh.settings import AuthSettings, Settings
from llmmesh.simulator.config import FaultSpec, SimulatorConfig
from tests.gateway.support import Gateway, running_gateway
from tests.support.inproc import inproc_mesh
from tests.support.sims import eventually

pytestmark = pytest.mark.xdist_group("gateway_inproc")


@pytest.fixture(params=[False, True], ids=["gateway-process", "hosted"])
def hosted(request: pytest.FixtureRequest) -> bool:
    """Each test runs against both designs: the gateway calling inference over gRPC (its own
    process), and hosted beside it, calling it in-process (the monolith)."""
    return request.param

MODEL = "smollm2:135m"
HI = [{"role": "user", "content": "hi"}]


def sdk(gateway: Gateway, api_key: str = "unused") -> AsyncOpenAI:
    return AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key=api_key, max_retries=0, timeout=30)


async def test_a_failure_mid_stream_is_an_error_event_after_the_tokens(hosted: bool, inference_mesh) -> None:
    # The backend breaks after 3 frames; with one attempt allowed the inference service gives up.
    sim = SimulatorConfig(fault=FaultSpec(fail_at_chunk=3))
    async with inference_mesh(sim, max_attempts=1) as mesh, running_gateway(mesh, hosted) as gw, sdk(gw) as client:
        stream = await client.chat.completions.create(model=MODEL, messages=HI, stream=True)
        chunks = []
        with pytest.raises(openai.APIError) as err:
            async for chunk in stream:
                chunks.append(chunk)
        assert not isinstance(err.value, openai.APIStatusError)  # it came in the 200 stream
        assert chunks[0].choices[0].delta.role == "assistant"
        # The 3 tokens (one word each), in as many chunks or fewer when the relay coalesced them.
        assert len("".join(c.choices[0].delta.content or "" for c in chunks).split()) == 3
        assert all(c.choices[0].finish_reason is None for c in chunks)
        body = err.value.body
        assert isinstance(body, dict) and body["code"] == "service_unavailable" and body["type"] == "server_error"

        # On the wire: the error event is the last frame, with no [DONE] after it.
        async with httpx.AsyncClient(timeout=30) as http:
            raw = await http.post(f"{gw.url}/v1/chat/completions",
                                  json={"model": MODEL, "messages": HI, "stream": True})
        frames = [f for f in raw.text.split("\n\n") if f]
        assert raw.status_code == 200 and "[DONE]" not in raw.text
        last = json.loads(frames[-1].removeprefix("data: "))
        assert set(last) == {"error"} and set(last["error"]) == {"message", "type", "param", "code"}


async def test_api_keys_pass_through_to_the_services(hosted: bool, settings: Settings, registry: CollectorRegistry,
                                                     tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": [{"name": "app", "sha256": hash_key("s3cret"), "scopes": ["inference"]}]}))
    secured = dataclasses.replace(settings, auth=AuthSettings(api_keys_file=str(keys)))
    async with inproc_mesh(secured, registry, SimulatorConfig()) as mesh, running_gateway(mesh, hosted) as gw:
        async with sdk(gw, api_key="wrong") as client:
            with pytest.raises(openai.AuthenticationError) as err:
                await client.chat.completions.create(model=MODEL, messages=HI)
            assert err.value.code == "invalid_api_key"
            with pytest.raises(openai.AuthenticationError):
                await client.chat.completions.create(model=MODEL, messages=HI, stream=True)
            with pytest.raises(openai.AuthenticationError):
                await client.models.list()
        async with sdk(gw, api_key="s3cret") as client:
            resp = await client.chat.completions.create(model=MODEL, messages=HI, max_tokens=2)
            assert resp.usage and resp.usage.completion_tokens == 2
            assert [m.id async for m in client.models.list()]
        async with httpx.AsyncClient(timeout=10) as http:  # x-api-key works too
            ok = await http.get(f"{gw.url}/v1/models", headers={"x-api-key": "s3cret"})
            assert ok.status_code == 200


async def test_overload_is_429_with_retry_after(hosted: bool, inference_mesh) -> None:
    slow = SimulatorConfig(token_delay_s=0.05)
    # No queue (length 0): a saturated backend refuses at once.
    async with inference_mesh(slow, max_inflight_per_backend=1, queue_max_length=0) as mesh, \
            running_gateway(mesh, hosted) as gw, \
            sdk(gw) as client:
        busy = await client.chat.completions.create(model=MODEL, messages=HI, stream=True)
        first = await anext(aiter(busy))  # the one allowed generation is now running
        assert first.choices[0].delta.role == "assistant"
        with pytest.raises(openai.RateLimitError) as err:
            await client.chat.completions.create(model=MODEL, messages=HI)
        assert err.value.code == "rate_limit_exceeded"
        assert int(err.value.response.headers["retry-after"]) >= 1
        await busy.close()


async def test_the_priority_header_reaches_the_admission_queue(hosted: bool, inference_mesh,
                                                                registry: CollectorRegistry) -> None:
    async with inference_mesh(SimulatorConfig()) as mesh, running_gateway(mesh, hosted) as gw, sdk(gw) as client:
        for priority in ("batch", "interactive", "batch"):
            await client.chat.completions.create(model=MODEL, messages=HI, max_tokens=2,
                                                 extra_headers={"x-llmmesh-priority": priority})
    admitted = {p: registry.get_sample_value("llmmesh_inference_queue_wait_seconds_count",
                                             {"model": MODEL, "priority": p}) for p in ("batch", "interactive")}
    assert admitted == {"batch": 2, "interactive": 1}


async def test_deadline_header_and_request_shapes(hosted: bool, inference_mesh) -> None:
    slow = SimulatorConfig(token_delay_s=0.2)
    async with inference_mesh(slow) as mesh, running_gateway(mesh, hosted) as gw, \
            httpx.AsyncClient(base_url=gw.url, timeout=30) as http:
        late = await http.post("/v1/chat/completions", json={"model": MODEL, "messages": HI},
                               headers={"x-llmmesh-timeout-s": "0.3"})
        assert late.status_code == 504 and late.json()["error"]["code"] == "timeout"
        bad = await http.post("/v1/chat/completions", json={"model": MODEL, "messages": HI},
                              headers={"x-llmmesh-timeout-s": "soon"})
        assert bad.status_code == 400
        typed = await http.post("/v1/chat/completions", json={"model": MODEL, "messages": HI, "temperature": "hot"})
        assert typed.status_code == 400 and typed.json()["error"]["param"] == "temperature"
        assert (await http.post("/v1/chat/completions", json=["not", "an", "object"])).status_code == 400
        assert (await http.post("/v1/embeddings", json={"model": MODEL, "input": [[1, 2, 3]]})).json()["error"][
            "param"] == "input"
        assert (await http.get("/healthz")).status_code == 200
        text = (await http.get("/metrics")).text
        assert 'llmmesh_gateway_requests_total{method="POST",route="/v1/chat/completions",status="504"} 1.0' in text
        assert 'route="/v1/chat/completions",status="400"} 3.0' in text


async def test_a_refusal_in_the_queue_is_an_http_status_and_queue_updates_are_not_relayed(hosted: bool,
        inference_mesh, registry: CollectorRegistry) -> None:
    """`queued` events are no OpenAI or Ollama event: the headers wait for the slot, so a request
    that waited and was then refused (the queue's wait bound) gets a 429, streamed or not."""
    slow = SimulatorConfig(token_delay_s=0.05, tokens=60)
    async with inference_mesh(slow, max_inflight_per_backend=1, queue_max_wait_s=0.5) as mesh, \
            running_gateway(mesh, hosted) as gw, sdk(gw) as client, \
            httpx.AsyncClient(base_url=gw.url, timeout=30) as http:
        busy = await client.chat.completions.create(model=MODEL, messages=HI, stream=True)
        await anext(aiter(busy))  # the one slot is taken for 3 s
        chat = {"model": MODEL, "messages": HI}
        for path, body in [("/v1/chat/completions", {**chat, "stream": True}), ("/v1/chat/completions", chat),
                           ("/api/chat", chat), ("/api/chat", {**chat, "stream": False})]:
            refused = await http.post(path, json=body)
            assert refused.status_code == 429, (path, body, refused.text)
            assert int(refused.headers["retry-after"]) >= 1
        refused_in_queue = registry.get_sample_value("llmmesh_inference_queue_refused_total",
                                                     {"model": MODEL, "priority": "interactive", "reason": "timeout"})
        assert refused_in_queue == 4

        # One that waits, then gets the slot: a plain 200 stream whose first chunk opens the answer.
        waiting = asyncio.ensure_future(http.post("/v1/chat/completions", json={**chat, "stream": True,
                                                                                 "max_tokens": 2}))
        await eventually(lambda: registry.get_sample_value(
            "llmmesh_inference_queue_depth", {"model": MODEL, "priority": "interactive"}) == 1)
        await busy.close()
        served = await waiting
        frames = [json.loads(f.removeprefix("data: ")) for f in served.text.split("\n\n") if f and "[DONE]" not in f]
        assert served.status_code == 200 and "queued" not in served.text
        assert frames[0]["choices"][0]["delta"]["role"] == "assistant" and served.text.rstrip().endswith("[DONE]")
