"""The run store through the real Envoy: every run's id as the `x-llmmesh-run-id` response header
over REST (unary and SSE, failures too) and gRPC (grpcurl), and RunsService's REST routes: the
listing with its query filters, one run, deleting it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from llmmesh.launcher.up import Mesh
from tests.support.e2e import grpcurl, sse_events
from tests.support.mesh import scripted_mesh

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("runs_rest")]

RULES = [{"match": "Criterion: factual\n", "response": {"reasoning": "exact", "score": 5}}]
REQUEST = {"question": "What is 2+2?", "answer": "4"}


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    with scripted_mesh(tmp_path_factory.mktemp("runs-rest"), RULES) as mesh:
        yield mesh


@pytest.fixture(scope="module")
def rest(mesh: Mesh) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://{mesh.ingress}", timeout=60) as client:
        yield client


def test_a_rest_run_answers_with_its_id_and_reads_back(rest: httpx.Client) -> None:
    resp = rest.post("/api/v1/judge/evaluate", json=REQUEST)
    assert resp.status_code == 200, resp.text
    run_id = resp.json()["run_id"]
    assert resp.headers["x-llmmesh-run-id"] == run_id
    got = rest.get(f"/api/v1/runs/{run_id}")
    assert got.status_code == 200, got.text
    run = got.json()["run"]
    assert (run["run_id"], run["pattern"], run["method"], run["status"]) == (run_id, "judge", "Evaluate",
                                                                            "RUN_STATUS_SUCCEEDED")
    assert run["request"] == REQUEST and run["result"]["score"] == 5 and run["result"]["run_id"] == run_id
    assert run["models"] == ["smollm2:135m"] and run["backends"] == ["sim"]
    assert run["usage"]["model_calls"] == 1 and run["events"][0]["reasoning"]["text"]


def test_an_sse_run_sends_its_id_as_a_header_and_in_the_result(rest: httpx.Client) -> None:
    resp = rest.post("/api/v1/judge/evaluate:stream", json=[{"evaluate": REQUEST}])
    assert resp.status_code == 200, resp.text
    events = sse_events(resp.text)
    run_id = events[-1]["result"]["run_id"]
    assert resp.headers["x-llmmesh-run-id"] == run_id
    assert rest.get(f"/api/v1/runs/{run_id}").json()["run"]["method"] == "EvaluateStream"


def test_a_failed_rest_run_keeps_its_http_status_and_sends_its_id(rest: httpx.Client) -> None:
    resp = rest.post("/api/v1/judge/evaluate", json={**REQUEST, "model": "no-such-model"})
    assert resp.status_code == 404, resp.text
    run_id = resp.headers["x-llmmesh-run-id"]
    run = rest.get(f"/api/v1/runs/{run_id}").json()["run"]
    assert run["status"] == "RUN_STATUS_FAILED" and run["error"]["code"] == 5
    bad = rest.post("/api/v1/judge/evaluate", json={"question": "no answer"})
    assert bad.status_code == 400 and "x-llmmesh-run-id" not in bad.headers  # no run at all


def test_grpc_clients_get_the_id_as_a_header(mesh: Mesh) -> None:
    done = grpcurl("-plaintext", "-v", "-d", json.dumps(REQUEST), mesh.ingress,
                   "llmmesh.judge.v1.JudgeService/Evaluate")
    assert done.returncode == 0, done.stderr
    # -v prints the response headers, then the response.
    (run_id,) = re.findall(r'"run_id": "(\w+)"', done.stdout)
    assert f"x-llmmesh-run-id: {run_id}" in done.stdout


def test_the_listing_filters_and_pages_over_rest(rest: httpx.Client) -> None:
    ids = [rest.post("/api/v1/judge/evaluate", json=REQUEST).json()["run_id"] for _ in range(3)]
    since = (datetime.now(UTC) - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    page = rest.get("/api/v1/runs", params={"pattern": "judge", "status": "RUN_STATUS_SUCCEEDED",
                                           "created_after": since, "page_size": 2})
    assert page.status_code == 200, page.text
    body = page.json()
    assert [r["run_id"] for r in body["runs"]] == ids[::-1][:2]
    assert all(r["events"] == [] for r in body["runs"])
    following = rest.get("/api/v1/runs", params={"pattern": "judge", "status": "RUN_STATUS_SUCCEEDED",
                                                "created_after": since, "page_size": 2,
                                                "page_token": body["next_page_token"]}).json()
    assert following["runs"][0]["run_id"] == ids[0]
    assert rest.get("/api/v1/runs", params={"model": "no-such-model"}).json()["runs"] == []
    bad = rest.get("/api/v1/runs", params={"page_token": "garbage"})
    assert bad.status_code == 400 and "page_token" in bad.text


def test_deleting_over_rest(rest: httpx.Client) -> None:
    run_id = rest.post("/api/v1/judge/evaluate", json=REQUEST).json()["run_id"]
    assert rest.delete(f"/api/v1/runs/{run_id}").status_code == 200
    assert rest.get(f"/api/v1/runs/{run_id}").status_code == 404
    assert rest.delete(f"/api/v1/runs/{run_id}").status_code == 404
