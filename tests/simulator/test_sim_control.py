"""The /_sim/ control API: stats contents, the bounded recent list, reset."""

from __future__ import annotations

import httpx
from simtest_helpers import MODEL, stats

from llmmesh.simulator import RunningSimulator
from llmmesh.simulator.stats import RECENT_LIMIT


async def test_stats_record_requests_and_reset(sim: RunningSimulator, http: httpx.AsyncClient) -> None:
    await http.get(sim.url + "/api/tags")
    chat = {"model": MODEL, "messages": [{"role": "user", "content": "x" * 200 + " tail words"}], "stream": False}
    await http.post(sim.url + "/api/chat", json=chat)
    await http.post(sim.url + "/api/generate", json={"model": "ghost", "prompt": "p"})
    snapshot = await stats(http, sim)
    assert snapshot["name"] == "sim"
    assert (snapshot["started"], snapshot["completed"], snapshot["errored"]) == (2, 1, 1)
    assert snapshot["endpoints"] == {"/api/tags": 1, "/api/chat": 1, "/api/generate": 1}
    first, second = snapshot["recent"]
    assert first["path"] == "/api/chat" and first["model"] == MODEL and first["outcome"] == "completed"
    assert first["prompt_tail"].endswith("tail words") and len(first["prompt_tail"]) == 80
    assert first["tokens"] == 8 and first["duration_ms"] >= first["ttft_ms"] > 0
    assert second["outcome"] == "not_found" and second["status"] == 404

    reset = (await http.post(sim.url + "/_sim/stats/reset")).json()
    assert reset["started"] == 0 and reset["recent"] == [] and reset["endpoints"] == {}


async def test_recent_list_is_bounded(sim: RunningSimulator, http: httpx.AsyncClient) -> None:
    body = {"model": MODEL, "input": "x"}
    for _ in range(RECENT_LIMIT + 5):
        await http.post(sim.url + "/api/embed", json=body)
    snapshot = await stats(http, sim)
    assert snapshot["completed"] == RECENT_LIMIT + 5 and len(snapshot["recent"]) == RECENT_LIMIT
    assert snapshot["recent"][-1]["id"] == RECENT_LIMIT + 5
