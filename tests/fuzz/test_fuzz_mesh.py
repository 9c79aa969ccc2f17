"""Fuzz the whole mesh's gRPC and REST surfaces through the real Envoy ingress (monolith on the
simulator, API keys on), with requests derived from the proto descriptors (tests/fuzz/strategies).

Each Hypothesis example is a batch of requests sent concurrently, every one with a deadline, each
with a valid key, no key, a wrong key or a key of another scope. Generations stay tiny whatever
max_tokens says: the simulator answers at most 32 tokens, with no delay between them, and the
mesh runs with small pattern limits, so the valid requests' runs are short too. What must hold (see
tests/fuzz/runner.py for the exact rules): no INTERNAL/UNKNOWN/5xx outside the documented 503, no
hang, terminal events on every stream; then every supervised process is still alive and the
service process's memory stayed bounded. The figures (requests, time, outcomes) are printed and
written to fuzz-summary.json in the mesh's state directory.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import text_format
from hypothesis import given
from hypothesis import strategies as st

from llmmesh.launcher.up import Mesh
from tests.fuzz.profiles import fuzz_settings
from tests.fuzz.runner import Outcome, Tally, call_grpc, call_rest, rss_bytes
from tests.fuzz.strategies import Rpc, all_rpcs, requests, rest_bodies
from tests.support.keys import KeySpec, write_keys
from tests.support.mesh import running_mesh

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("fuzz")]

RPCS = all_rpcs()
BATCH = 16
# CI: 330 + 330 batches of 16 = 10,560 requests.
GRPC_EXAMPLES = 330
REST_EXAMPLES = 330
# The service process may grow (caches, pools, allocator high-water marks), but not without bound.
MAX_RSS_GROWTH = 256 * 1024 * 1024
# Smaller run limits than the defaults keep the valid requests' runs short.
SERVICE_ENV = {"LLMMESH_MAX_ROUNDS": "3", "LLMMESH_MAX_AGENTS": "3", "LLMMESH_MAX_PANEL": "4", "LLMMESH_MAX_STEPS": "3",
               "LLMMESH_MAX_PLAN_STEPS": "4", "LLMMESH_MAX_REPLANS": "1", "LLMMESH_HUMAN_TIMEOUT_S": "2",
               "LLMMESH_TOOL_TIMEOUT_S": "2", "LLMMESH_LOG_LEVEL": "WARNING"}


@dataclass
class FuzzMesh:
    mesh: Mesh
    keys: dict[str, str]
    loop: asyncio.AbstractEventLoop
    channel: grpc.aio.Channel
    http: httpx.AsyncClient
    rss_before: dict[str, int] = field(default_factory=dict)
    tallies: dict[str, Tally] = field(default_factory=lambda: {"grpc": Tally(), "rest": Tally()})

    def credentials(self, who: str) -> dict[str, str]:
        if who == "none":
            return {}
        if who == "wrong":
            return {"authorization": "Bearer not-a-key"}
        return {"authorization": f"Bearer {self.keys[who]}"} if who != "header" else {"x-api-key": self.keys["all"]}

    def service_pids(self) -> dict[str, int]:
        return {c.name: c.proc.pid for c in self.mesh.supervisor.children}


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzMesh]:
    work = Path(tmp_path_factory.mktemp("fuzz"))
    keys = write_keys(work / "keys.json", all=KeySpec(("*",)), judge=KeySpec(("judge",)))
    loop = asyncio.new_event_loop()
    with running_mesh(work / "state", backend="sim", api_keys_file=work / "keys.json", sim_token_delay_ms=0,
                      service_env=SERVICE_ENV) as mesh:
        async def connect() -> tuple[grpc.aio.Channel, httpx.AsyncClient]:
            limits = httpx.Limits(max_connections=BATCH, max_keepalive_connections=BATCH)
            return (grpc.aio.insecure_channel(mesh.ingress, options=[("grpc.max_send_message_length", -1)]),
                    httpx.AsyncClient(base_url=f"http://{mesh.ingress}", limits=limits))

        channel, http = loop.run_until_complete(connect())
        state = FuzzMesh(mesh, keys, loop, channel, http)
        # Warm up (first calls open connections, load modules, fill pools) before measuring memory.
        loop.run_until_complete(http.get("/api/v1/inference/models", headers=state.credentials("all")))
        state.rss_before = {name: rss_bytes(pid) for name, pid in state.service_pids().items()}
        try:
            yield state
        finally:
            loop.run_until_complete(channel.close())
            loop.run_until_complete(http.aclose())
            loop.close()


# Who calls: mostly a valid key, so that requests reach validation and real runs.
callers = st.sampled_from(["all"] * 14 + ["header", "judge", "none", "wrong"])
queries = st.one_of(st.just(""), st.just(""), st.just(""),
                    st.sampled_from(["?model=x", "?a=b&a=c", "?%zz", "?" + "q" * 5000]))


@dataclass(frozen=True)
class GrpcCall:
    rpc: Rpc
    who: str
    messages: list[Any]

    def __repr__(self) -> str:
        shown = [text_format.MessageToString(m, as_one_line=True)[:300] for m in self.messages]
        return f"GrpcCall({self.rpc.path} as {self.who}: {shown})"


@dataclass(frozen=True)
class RestCall:
    rpc: Rpc
    who: str
    query: str
    body: bytes

    def __repr__(self) -> str:
        return f"RestCall({self.rpc.http} {self.query[:50]} as {self.who}: {self.body[:400]!r})"


@st.composite
def grpc_calls(draw: st.DrawFn) -> GrpcCall:
    rpc = draw(st.sampled_from(RPCS))
    return GrpcCall(rpc, draw(callers), draw(requests(rpc)))


@st.composite
def rest_calls(draw: st.DrawFn) -> RestCall:
    rpc = draw(st.sampled_from(RPCS))
    return RestCall(rpc, draw(callers), draw(queries), draw(rest_bodies(rpc)))


def _run(fuzz: FuzzMesh, surface: str, coros: list[Any], calls: list[Any]) -> None:
    async def concurrently() -> list[Outcome]:
        return await asyncio.gather(*coros)

    tally = fuzz.tallies[surface]
    started = time.monotonic()
    outcomes = fuzz.loop.run_until_complete(concurrently())
    tally.seconds += time.monotonic() - started
    before = len(tally.failures)
    for outcome, call in zip(outcomes, calls, strict=True):
        tally.add(outcome, repr(call))
    assert len(tally.failures) == before, "\n".join(tally.failures[before:])


def test_fuzz_grpc_surface(fuzz: FuzzMesh) -> None:
    @fuzz_settings(GRPC_EXAMPLES)
    @given(batch=st.lists(grpc_calls(), min_size=BATCH, max_size=BATCH))
    def batch_of_calls(batch: list[GrpcCall]) -> None:
        coros = [call_grpc(fuzz.channel, c.rpc, c.messages, list(fuzz.credentials(c.who).items())) for c in batch]
        _run(fuzz, "grpc", coros, batch)

    batch_of_calls()


def test_fuzz_rest_surface(fuzz: FuzzMesh) -> None:
    @fuzz_settings(REST_EXAMPLES)
    @given(batch=st.lists(rest_calls(), min_size=BATCH, max_size=BATCH))
    def batch_of_calls(batch: list[RestCall]) -> None:
        coros = [call_rest(fuzz.http, c.rpc, c.body, fuzz.credentials(c.who), c.query) for c in batch]
        _run(fuzz, "rest", coros, batch)

    batch_of_calls()


def test_after_the_fuzz_every_process_lives_and_memory_is_bounded(fuzz: FuzzMesh) -> None:
    assert fuzz.mesh.supervisor.first_dead() is None
    after = {name: rss_bytes(pid) for name, pid in fuzz.service_pids().items()}
    growth = {name: after[name] - fuzz.rss_before[name] for name in after}
    summary = {
        "requests": {s: t.requests for s, t in fuzz.tallies.items()},
        "seconds_in_requests": {s: round(t.seconds, 1) for s, t in fuzz.tallies.items()},
        "outcomes": {s: dict(t.outcomes.most_common()) for s, t in fuzz.tallies.items()},
        "rss_mb_before": {n: round(v / 2**20, 1) for n, v in fuzz.rss_before.items()},
        "rss_mb_after": {n: round(v / 2**20, 1) for n, v in after.items()},
    }
    (fuzz.mesh.options.state_dir / "fuzz-summary.json").write_text(json.dumps(summary, indent=2))
    print("\nfuzz summary:", json.dumps(summary, indent=2))
    assert all(g < MAX_RSS_GROWTH for g in growth.values()), summary
    # The service still answers normally.
    ok = fuzz.loop.run_until_complete(fuzz.http.get("/api/v1/inference/models", headers=fuzz.credentials("all")))
    assert ok.status_code == 200
