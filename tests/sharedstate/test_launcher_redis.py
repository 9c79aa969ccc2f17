"""`./scripts/up --redis`: the launcher starts a local redis-server and points every service at it;
through that mesh (the real Envoy, over REST), a judge asked the same thing twice answers the
second time from the response cache, which lives in that Redis."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import redis

from llmmesh.launcher.backend_choice import BackendChoice
from llmmesh.launcher.mesh_plan import plan_services, service_env
from llmmesh.launcher.options import LOCAL_REDIS_PORT, UpOptions, parse_args
from llmmesh.launcher.up import Mesh
from tests.support.e2e import environ
from tests.support.mesh import running_mesh
from tests.support.ports import free_port

VERDICT = {"reasoning": "Paris is the capital of France, as the answer says.", "score": 5}
JUDGE = {"question": "What is the capital of France?", "answer": "Paris", "judge_type": "factual"}


def test_the_option_and_what_the_services_are_told() -> None:
    assert parse_args([]).redis_port is None
    assert parse_args(["--redis"]).redis_port == LOCAL_REDIS_PORT
    assert parse_args(["--redis", "7001", "--backend", "sim"]).redis_port == 7001
    choice = BackendChoice("sim", ("sim=http://127.0.0.1:11435",))
    with_redis = UpOptions(backend="sim", redis_port=7001)
    assert service_env(with_redis, choice, plan_services(with_redis))["LLMMESH_REDIS_URL"] == (
        "redis://127.0.0.1:7001/0")
    assert "LLMMESH_REDIS_URL" not in service_env(UpOptions(backend="sim"), choice, plan_services(UpOptions()))


def sim_started(mesh: Mesh) -> int:
    url = mesh.choice.specs[0].split("=", 1)[1]
    return httpx.get(f"{url}/_sim/stats", timeout=5, trust_env=False).json()["started"]


@pytest.mark.e2e
@pytest.mark.timeout(180)
def test_up_with_redis_shares_the_cache_through_its_own_redis(tmp_path: Path) -> None:
    port = free_port()
    with running_mesh(tmp_path / "mesh", backend="sim", redis_port=port) as mesh:
        (child,) = [c for c in mesh.supervisor.children if c.name == "redis"]
        assert environ(next(c for c in mesh.supervisor.children if c.name == "llmmesh").proc.pid)[
            "LLMMESH_REDIS_URL"] == f"redis://127.0.0.1:{port}/0"
        sim = mesh.choice.specs[0].split("=", 1)[1]
        httpx.put(f"{sim}/_sim/scripts", json={"rules": [{"match": "Criterion:", "response": json.dumps(VERDICT)}]},
                  timeout=10).raise_for_status()
        with httpx.Client(base_url=f"http://{mesh.ingress}", timeout=60, trust_env=False) as rest:
            first = rest.post("/api/v1/judge/evaluate", json=JUDGE)
            calls = sim_started(mesh)
            again = rest.post("/api/v1/judge/evaluate", json=JUDGE)
        assert first.status_code == again.status_code == 200, (first.text, again.text)
        assert sim_started(mesh) == calls >= 1  # the second judge run never reached the model
        with redis.Redis(port=port, socket_timeout=5) as r:
            assert r.keys("llmmesh:blob:response:*")
    assert child.proc.poll() is not None  # stopped with the mesh
    a, b = first.json(), again.json()
    assert (a["verdict"], a["score"], a["reasoning"]) == (b["verdict"], b["score"], b["reasoning"])
