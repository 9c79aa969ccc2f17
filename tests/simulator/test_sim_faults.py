"""Fault injection, concurrency limits, health faults and server-side cancellation detection."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import ollama
import pytest
from simtest_helpers import MODEL, MakeClient, StartSim, stats, wait_for_stats

from llmmesh.simulator import RunningSimulator

USER = [{"role": "user", "content": "fault drill"}]
BUSY = "server busy, please try again.  maximum pending requests exceeded"


def chat_body(**extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": USER, **extra}


def faulty(spec: str, timeout: float = 10) -> httpx.AsyncClient:
    return httpx.AsyncClient(headers={"x-sim-fault": spec}, timeout=timeout)


async def test_delay_ms_and_token_delay_ms(sim: RunningSimulator) -> None:
    started = time.monotonic()
    async with faulty("delay_ms=300") as http:
        resp = await http.post(sim.url + "/api/chat", json=chat_body(stream=False))
    assert resp.status_code == 200 and time.monotonic() - started >= 0.25

    started = time.monotonic()
    arrivals = []
    async with faulty("token_delay_ms=40") as http:
        async with http.stream("POST", sim.url + "/api/generate", json={"model": MODEL, "prompt": "slow"}) as r:
            async for line in r.aiter_lines():
                if line:
                    arrivals.append(time.monotonic() - started)
    assert len(arrivals) == 9 and arrivals[-1] >= 8 * 0.04 * 0.75  # 8 paced tokens + final line


async def test_status_fault_native_and_openai_shapes(oc: MakeClient, sim: RunningSimulator) -> None:
    async with faulty("status=500") as http:
        native = await http.post(sim.url + "/api/chat", json=chat_body())
        openai = await http.post(sim.url + "/v1/chat/completions", json=chat_body())
    assert native.status_code == 500 and "simulated" in native.json()["error"]
    assert openai.status_code == 500 and openai.json()["error"]["type"] == "api_error"

    with pytest.raises(ollama.ResponseError) as err:
        await oc(sim, headers={"x-sim-fault": "status=429"}).chat(model=MODEL, messages=USER)
    assert err.value.status_code == 429


async def test_fail_at_chunk_emits_in_stream_error(
    oc: MakeClient, sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    async with http.stream("POST", sim.url + "/api/chat", json=chat_body(sim_fault="fail_at_chunk=3")) as resp:
        assert resp.status_code == 200
        lines = [json.loads(line) async for line in resp.aiter_lines() if line]
    assert len(lines) == 4 and "error" in lines[-1] and not any(ln.get("done") for ln in lines)

    got = []
    sim_client = oc(sim, headers={"x-sim-fault": "fail_at_chunk=2"})
    with pytest.raises(ollama.ResponseError) as err:
        async for part in await sim_client.generate(model=MODEL, prompt="x", stream=True):
            got.append(part)
    assert len(got) == 2 and "simulated failure" in err.value.error

    whole = await http.post(sim.url + "/api/chat", json=chat_body(stream=False, sim_fault="fail_at_chunk=1"))
    assert whole.status_code == 500 and "error" in whole.json()
    snapshot = await stats(http, sim)
    assert snapshot["errored"] == 3 and snapshot["outcomes"] == {"error": 3}


async def test_hang_after_then_client_timeout_counts_cancelled(
    oc: MakeClient, sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    got = []
    sim_client = oc(sim, headers={"x-sim-fault": "hang_after=2"}, timeout=0.4)
    with pytest.raises(httpx.ReadTimeout):
        async for part in await sim_client.chat(model=MODEL, messages=USER, stream=True):
            got.append(part)
    assert len(got) == 2
    snapshot = await wait_for_stats(http, sim, lambda s: s["cancelled"] == 1)
    assert snapshot["cancelled"] == 1 and snapshot["in_flight"] == 0
    assert snapshot["recent"][-1]["outcome"] == "cancelled" and snapshot["recent"][-1]["frames"] == 2

    async with faulty("hang", timeout=0.3) as short:  # non-streaming: no answer at all
        with pytest.raises(httpx.ReadTimeout):
            await short.post(sim.url + "/api/chat", json=chat_body(stream=False))
    assert (await wait_for_stats(http, sim, lambda s: s["cancelled"] == 2))["cancelled"] == 2


async def test_drop_after_aborts_the_connection(oc: MakeClient, sim: RunningSimulator, http: httpx.AsyncClient) -> None:
    got = []
    sim_client = oc(sim, headers={"x-sim-fault": "drop_after=3"})
    with pytest.raises(httpx.TransportError):
        async for part in await sim_client.chat(model=MODEL, messages=USER, stream=True):
            got.append(part)
    assert len(got) == 3 and not got[-1].done

    async with faulty("drop") as dropper:
        with pytest.raises(httpx.TransportError):
            await dropper.post(sim.url + "/v1/chat/completions", json=chat_body())
    snapshot = await wait_for_stats(http, sim, lambda s: s["outcomes"].get("dropped") == 2)
    assert snapshot["outcomes"] == {"dropped": 2}


async def test_busy_fault_and_max_concurrency(oc: MakeClient, start_sim: StartSim, http: httpx.AsyncClient) -> None:
    sim = await start_sim(tokens=10, max_concurrency=1)
    with pytest.raises(ollama.ResponseError) as err:
        await oc(sim, headers={"x-sim-fault": "busy"}).chat(model=MODEL, messages=USER)
    assert err.value.status_code == 503 and err.value.error == BUSY

    async with faulty("token_delay_ms=30") as slow:
        async with slow.stream("POST", sim.url + "/api/chat", json=chat_body()) as first:
            lines = first.aiter_lines()
            assert await anext(lines)  # the first generation now holds the only slot
            second = await http.post(sim.url + "/api/chat", json=chat_body())
            assert second.status_code == 503 and second.json() == {"error": BUSY}
            openai = await http.post(sim.url + "/v1/chat/completions", json=chat_body())
            assert openai.status_code == 503 and openai.json()["error"]["message"] == BUSY
            assert len([line async for line in lines if line]) == 10  # 11 lines in all: first one unaffected
    third = await http.post(sim.url + "/api/chat", json=chat_body(stream=False))
    assert third.status_code == 200
    snapshot = await stats(http, sim)
    assert snapshot["outcomes"] == {"busy": 3, "completed": 2}
    assert snapshot["peak_in_flight_generations"] == 1


async def test_max_concurrency_as_a_fault(sim: RunningSimulator, http: httpx.AsyncClient) -> None:
    await http.put(sim.url + "/_sim/faults", json={"spec": "max_concurrency=2,token_delay_ms=40"})
    results = await asyncio.gather(*(http.post(sim.url + "/api/chat", json=chat_body()) for _ in range(4)))
    codes = sorted(r.status_code for r in results)
    assert codes == [200, 200, 503, 503]


async def test_instance_faults_through_control_api(sim: RunningSimulator, http: httpx.AsyncClient) -> None:
    put = await http.put(sim.url + "/_sim/faults", json={"spec": "status=500, times=2"})
    assert put.json() == {"spec": "status=500,times=2", "remaining": 2}
    codes = [(await http.post(sim.url + "/api/chat", json=chat_body(stream=False))).status_code for _ in range(3)]
    assert codes == [500, 500, 200]  # times=2 used up, fault cleared itself
    assert (await http.get(sim.url + "/_sim/faults")).json()["spec"] == ""

    await http.put(sim.url + "/_sim/faults", json={"spec": "status=502"})
    # Header fault layers over the instance fault: its keys win.
    overridden = await http.post(
        sim.url + "/api/chat", json=chat_body(stream=False), headers={"x-sim-fault": "status=504"}
    )
    assert overridden.status_code == 504
    assert (await http.put(sim.url + "/_sim/faults", json={"spec": ""})).json()["spec"] == ""
    assert (await http.post(sim.url + "/api/chat", json=chat_body(stream=False))).status_code == 200

    bad = await http.put(sim.url + "/_sim/faults", json={"spec": "explode=1"})
    assert bad.status_code == 400 and "unknown fault key" in bad.json()["error"]
    bad_header = await http.post(sim.url + "/api/chat", json=chat_body(), headers={"x-sim-fault": "delay_ms=soon"})
    assert bad_header.status_code == 400


async def test_rate_applies_fault_to_a_fraction(sim: RunningSimulator, http: httpx.AsyncClient) -> None:
    await http.put(sim.url + "/_sim/faults", json={"spec": "status=500,rate=0.5"})
    codes = [(await http.post(sim.url + "/api/chat", json=chat_body(stream=False))).status_code for _ in range(20)]
    assert 0 < codes.count(500) < 20 and set(codes) == {200, 500}


async def test_health_faults(sim: RunningSimulator, http: httpx.AsyncClient) -> None:
    await http.put(sim.url + "/_sim/faults", json={"spec": "health=down"})
    for path in ("/api/tags", "/api/ps", "/api/version", "/v1/models"):
        assert (await http.get(sim.url + path)).status_code == 503, path
    assert (await http.get(sim.url + "/")).status_code == 200  # like Ollama: / answers regardless
    assert (await http.post(sim.url + "/api/chat", json=chat_body(stream=False))).status_code == 200

    await http.put(sim.url + "/_sim/faults", json={"spec": "health=hang"})
    with pytest.raises(httpx.ReadTimeout):
        await http.get(sim.url + "/api/tags", timeout=0.3)
    await http.delete(sim.url + "/_sim/faults")
    assert (await http.get(sim.url + "/api/tags")).status_code == 200


async def test_embedding_faults(sim: RunningSimulator, http: httpx.AsyncClient) -> None:
    body = {"model": MODEL, "input": "x"}
    async with faulty("status=500") as failing:
        assert (await failing.post(sim.url + "/api/embed", json=body)).status_code == 500
        assert (await failing.post(sim.url + "/v1/embeddings", json=body)).status_code == 500
    started = time.monotonic()
    resp = await http.post(sim.url + "/api/embed", json={**body, "sim_fault": "delay_ms=250"})
    assert resp.status_code == 200 and time.monotonic() - started >= 0.2


@pytest.mark.parametrize("path", ["/api/chat", "/v1/chat/completions"])
async def test_client_disconnect_is_detected_server_side(
    start_sim: StartSim, http: httpx.AsyncClient, path: str
) -> None:
    sim = await start_sim(tokens=32)
    async with faulty("token_delay_ms=50") as streaming:
        async with streaming.stream("POST", sim.url + path, json=chat_body(stream=True)) as resp:
            lines = resp.aiter_lines()
            received = []
            while len(received) < 2:
                line = await anext(lines)
                if line:
                    received.append(line)
    # Leaving the block closed the connection after 2 of 33 frames.
    snapshot = await wait_for_stats(http, sim, lambda s: s["cancelled"] == 1, within=1.0)
    assert snapshot["cancelled"] == 1 and snapshot["completed"] == 0 and snapshot["in_flight"] == 0
    assert snapshot["recent"][-1]["tokens"] < 32
