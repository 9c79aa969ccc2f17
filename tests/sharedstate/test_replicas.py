"""Two inference replicas behind the real Envoy (microservices shape, as ./scripts/up runs it) sharing
one real redis-server: a key's request rate and token budget hold mesh-wide; Redis killed mid-run
is served through (fail-open: the documented behaviour, counted and logged once), and once it is
back the shared limits apply again; the response cache is shared, and the REST header controls it.

Rates are measured over seconds-long windows with a ±1 request/s margin: a token bucket in Redis
is exact, and what the margin absorbs is the window's edges on a busy machine, not the limit.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from llmmesh.common.v1 import common_pb2
from llmmesh.inference.v1 import inference_service_pb2 as pb
from llmmesh.inference.v1 import inference_service_pb2_grpc as pb_grpc
from llmmesh.launcher.up import Mesh
from llmmesh.topology.description import Shape
from tests.chaos.drills import log_entries
from tests.support.e2e import sse_events
from tests.support.keys import KeySpec, bearer, write_keys
from tests.support.mesh import running_mesh
from tests.support.redis_proc import RedisServer

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("microservices_ports"), pytest.mark.timeout(300)]

RATE = 5  # requests per second of the `rated` key
BUDGET = 300  # tokens per minute of the `budgeted` key (5 a second come back)
REPLICAS = ("inference-1", "inference-2")
MODELS = "/api/v1/inference/models"


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    path = tmp_path_factory.mktemp("keys") / "keys.json"
    return path, write_keys(path, rated=KeySpec(("*",), {"requests_per_second": RATE, "burst": 1}),
                            budgeted=KeySpec(("*",), {"tokens_per_minute": BUDGET}),
                            free=KeySpec(("*",)))


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory, redis: RedisServer,
         keys: tuple[Path, dict[str, str]]) -> Iterator[Mesh]:
    env = {"LLMMESH_REDIS_URL": redis.url, "LLMMESH_REDIS_RETRY_S": "0.5"}
    with running_mesh(tmp_path_factory.mktemp("mesh"), backend="sim", shape=Shape.MICROSERVICES,
                      replicas={"inference": 2}, api_keys_file=keys[0], service_env=env) as m:
        yield m


def replica_metrics(mesh: Mesh, name: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    port = next(p.metrics_port for p in mesh.plan if p.name == name)
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5, trust_env=False).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def metric(mesh: Mesh, replica: str, name: str, **labels: str) -> float:
    return replica_metrics(mesh, replica).get((name, tuple(sorted(labels.items()))), 0.0)


def handled(mesh: Mesh, replica: str, method: str, code: str) -> float:
    return sum(v for (name, labels), v in replica_metrics(mesh, replica).items()
               if name == "grpc_server_handled_total" and ("grpc_method", method) in labels
               and ("grpc_code", code) in labels)


def log_count(mesh: Mesh, replica: str, text: str) -> int:
    return sum(text in e.get("msg", "") for e in log_entries(mesh.options.state_dir / "logs" / f"{replica}.log"))


async def hammer(mesh: Mesh, key: str, seconds: float, workers: int = 4) -> list[tuple[float, int | str]]:
    """REST calls as fast as `workers` clients can make them: (time, HTTP status or what went wrong)."""
    out: list[tuple[float, int | str]] = []
    stop = time.monotonic() + seconds
    headers = dict(bearer(key))

    async def worker(http: httpx.AsyncClient) -> None:
        while time.monotonic() < stop:
            try:
                status: int | str = (await http.get(MODELS, headers=headers)).status_code
            except httpx.HTTPError as exc:
                status = type(exc).__name__  # a timeout here is a hang
            out.append((time.monotonic(), status))

    async with httpx.AsyncClient(base_url=f"http://{mesh.ingress}", timeout=5, trust_env=False) as http:
        await asyncio.gather(*(worker(http) for _ in range(workers)))
    return out


def admitted_per_second(calls: list[tuple[float, int | str]], start: float, end: float) -> float:
    return sum(1 for t, s in calls if start <= t < end and s == 200) / (end - start)


async def test_a_key_gets_its_rate_once_across_two_replicas(mesh: Mesh, keys: tuple[Path, dict[str, str]]) -> None:
    t0 = time.monotonic()
    calls = await hammer(mesh, keys[1]["rated"], 5.0)
    assert {s for _, s in calls} == {200, 429}, Counter(s for _, s in calls)
    # After the first second (the burst), the admitted rate is the key's, not twice it.
    assert RATE - 1 <= admitted_per_second(calls, t0 + 1, t0 + 5) <= RATE + 1
    for replica in REPLICAS:  # both replicas took part, and both refused
        assert handled(mesh, replica, "ListModels", "OK") > 0, replica
        assert handled(mesh, replica, "ListModels", "RESOURCE_EXHAUSTED") > 0, replica


async def test_a_token_budget_is_spent_once_across_two_replicas(mesh: Mesh,
                                                                keys: tuple[Path, dict[str, str]]) -> None:
    before = {r: handled(mesh, r, "Generate", "OK") for r in REPLICAS}
    spent = 0
    async with grpc.aio.insecure_channel(mesh.ingress) as channel:
        stub = pb_grpc.InferenceServiceStub(channel)
        for i in range(40):  # each call writes 20 tokens, uncached (temperature unset)
            request = pb.GenerateRequest(prompt=f"question {i}", options=common_pb2.GenerationOptions(max_tokens=20))
            try:
                events = [e async for e in stub.Generate(request, metadata=bearer(keys[1]["budgeted"]), timeout=30)]
            except grpc.aio.AioRpcError as err:
                assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, err
                assert "tokens_per_minute" in (err.details() or "")
                break
            spent += events[-1].done.prompt_tokens + events[-1].done.output_tokens
        else:
            raise AssertionError(f"the budget of {BUDGET} tokens never ran out ({spent} spent)")
    # One budget: its size, what refilled meanwhile (5 tokens/s) and one generation's overshoot.
    # Two budgets (one per replica) would have let about twice as much through.
    assert BUDGET <= spent < BUDGET * 1.5
    assert all(handled(mesh, r, "Generate", "OK") > before[r] for r in REPLICAS)


async def test_redis_killed_mid_run_is_served_through_then_shared_limits_return(
        mesh: Mesh, redis: RedisServer, keys: tuple[Path, dict[str, str]]) -> None:
    key = keys[1]["rated"]
    load = asyncio.create_task(hammer(mesh, key, 4.0))
    await asyncio.sleep(1.5)
    redis.kill()
    killed = time.monotonic()
    calls = await load
    after = [(t, s) for t, s in calls if t > killed]
    # Fail-open: requests keep being answered (admitted by each replica's own bucket, or refused
    # by it): no 5xx, no hang.
    assert {s for _, s in after} <= {200, 429} and any(s == 200 for _, s in after), Counter(s for _, s in after)
    for replica in REPLICAS:
        assert metric(mesh, replica, "llmmesh_redis_up") == 0, replica
        assert metric(mesh, replica, "llmmesh_redis_errors_total") >= 1, replica
        assert log_count(mesh, replica, "Redis unreachable") == 1, replica  # one line per outage

    redis.restart()
    deadline = time.monotonic() + 20
    while not all(metric(mesh, r, "llmmesh_redis_up") == 1 for r in REPLICAS):  # no traffic needed
        assert time.monotonic() < deadline, "the replicas did not reconnect to Redis"
        await asyncio.sleep(0.2)
    for replica in REPLICAS:
        assert log_count(mesh, replica, "Redis reachable again") == 1, replica
    t0 = time.monotonic()
    calls = await hammer(mesh, key, 5.0)
    assert {s for _, s in calls} == {200, 429}
    assert RATE - 1 <= admitted_per_second(calls, t0 + 1, t0 + 5) <= RATE + 1


async def test_the_cache_is_shared_and_the_rest_header_controls_it(mesh: Mesh,
                                                                   keys: tuple[Path, dict[str, str]]) -> None:
    body = {"prompt": "Name a colour.", "options": {"temperature": 0, "max_tokens": 6}}

    async def done(http: httpx.AsyncClient, mode: str | None = None) -> dict:
        headers = dict(bearer(keys[1]["free"])) | ({"x-llmmesh-cache": mode} if mode else {})
        resp = await http.post("/api/v1/inference/generate", json=body, headers=headers)
        assert resp.status_code == 200, resp.text
        events = sse_events(resp.text)
        assert "done" in events[-1], events[-1]
        return events[-1]["done"]

    async with httpx.AsyncClient(base_url=f"http://{mesh.ingress}", timeout=30, trust_env=False) as http:
        first = await done(http, "refresh")  # whatever an earlier run left, this one is fresh
        # Envoy picks a replica per request (least request, random among equals): with 12, both
        # replicas take some (all on one: p = 2 * 0.5**12).
        replays = [await done(http) for _ in range(12)]
        bypassed = await done(http, "bypass")
        bad = await http.post("/api/v1/inference/generate", json=body,
                              headers=dict(bearer(keys[1]["free"])) | {"x-llmmesh-cache": "maybe"})
    assert not first.get("cached") and first["backend"]
    # Envoy spreads the replays over both replicas: every one is a hit, whichever replica took it.
    assert all(r.get("cached") is True and not r.get("backend") for r in replays)
    assert {r["output_tokens"] for r in replays} == {first["output_tokens"]}
    assert not bypassed.get("cached")
    assert sum(metric(mesh, r, "llmmesh_cache_hits_total", model=first["model"]) for r in REPLICAS) >= 12
    assert all(metric(mesh, r, "llmmesh_cache_hits_total", model=first["model"]) > 0 for r in REPLICAS)
    assert bad.status_code == 400
    violation = json.loads(bad.text)["details"][0]["field_violations"][0]
    assert violation["field"] == "x-llmmesh-cache"
