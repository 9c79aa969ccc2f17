"""The judge over REST through the real Envoy (gRPC-JSON transcoding): the legacy request body,
pairwise mode, the criteria listing, field violations, and the `:stream` route as SSE."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from llmmesh.launcher.up import Mesh
from tests.support.e2e import sse_events
from tests.support.mesh import scripted_mesh

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("judge_rest")]

LEGACY = {"question": "What is the capital of France?", "answer": "Paris.", "contexts": ["Paris is in France."],
          "ground_truth": "Paris", "judge_type": "factual"}
RULES = [
    {"match": "regex:(?s)<answer_1>\nALPHA.*<answer_2>\nBETA", "response": {"reasoning": "A is right", "winner": "1"}},
    {"match": "regex:(?s)<answer_1>\nBETA.*<answer_2>\nALPHA", "response": {"reasoning": "A is right", "winner": "2"}},
    {"match": "Criterion: factual\n", "response": {"reasoning": "Matches the reference exactly.", "score": 5}},
]


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    with scripted_mesh(tmp_path_factory.mktemp("judge-rest"), RULES) as mesh:
        yield mesh


@pytest.fixture(scope="module")
def rest(mesh: Mesh) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://{mesh.ingress}", timeout=60) as client:
        yield client


def test_legacy_body_returns_score_verdict_and_judge(rest: httpx.Client) -> None:
    resp = rest.post("/api/v1/judge/evaluate", json=LEGACY)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/json"
    body = resp.json()
    assert (body["score"], body["verdict"], body["judge"]) == (5, "VERDICT_PASS", "smollm2:135m")
    assert (body["criterion"], body["min_score"], body["max_score"]) == ("factual", 1, 5)
    assert body["reasoning"] == "Matches the reference exactly."
    assert body["usage"]["model_calls"] == 1


def test_pairwise_over_rest_runs_both_orders(rest: httpx.Client) -> None:
    resp = rest.post("/api/v1/judge/evaluate", json={"question": "q", "answer": "ALPHA", "answer_b": "BETA",
                                                     "mode": "JUDGE_MODE_PAIRWISE"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["verdict"], body["score"], body["pairwise"]["consistent"]) == ("VERDICT_A", 1, True)
    assert [o["order"] for o in body["pairwise"]["orders"]] == ["a,b", "b,a"]


def test_criteria_are_listed(rest: httpx.Client) -> None:
    resp = rest.get("/api/v1/judge/criteria")
    assert resp.status_code == 200, resp.text
    scales = {c["name"]: (c["min_score"], c["max_score"]) for c in resp.json()["criteria"]}
    assert scales["factual"] == (1, 5) and scales["helpfulness"] == (1, 10) and len(scales) == 6


def test_unknown_judge_type_is_400_with_the_valid_ones(rest: httpx.Client) -> None:
    resp = rest.post("/api/v1/judge/evaluate", json={**LEGACY, "judge_type": "vibes"})
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert body["code"] == 3
    (detail,) = [d for d in body["details"] if d["@type"] == "type.googleapis.com/google.rpc.BadRequest"]
    (violation,) = detail["field_violations"]
    assert violation["field"] == "judge_type" and "valid: clarity, factual" in violation["description"]


def test_stream_is_sse_of_reasoning_then_the_result(rest: httpx.Client) -> None:
    resp = rest.post("/api/v1/judge/evaluate:stream", json=[{"evaluate": LEGACY}])
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "text/event-stream"
    events = sse_events(resp.text)
    # One or more reasoning events (deltas queued behind a lagging reader go out joined), then the result.
    assert [next(iter(e)) for e in events[:-1]] == ["reasoning"] * (len(events) - 1) and len(events) >= 2
    assert next(iter(events[-1])) == "result", events[-1]
    streamed = "".join(e["reasoning"]["text"] for e in events[:-1])
    assert streamed == events[-1]["result"]["reasoning"] == "Matches the reference exactly."  # the text, not JSON
    assert events[-1]["result"]["verdict"] == "VERDICT_PASS" and events[-1]["result"]["judge"] == "smollm2:135m"
