"""The jury over REST through the real Envoy (gRPC-JSON transcoding): a two-model panel's
aggregated verdict as JSON, and the `:stream` route as SSE ending with the result."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from llmmesh.launcher.up import Mesh
from tests.support.e2e import sse_events
from tests.support.mesh import scripted_mesh

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("jury_rest")]

# The two models the sim serves disagree: smollm2 finds the answer fully correct, llama3.2 partly.
RULES = [
    {"match": "Criterion: factual\n", "model": "smollm2:135m", "response": {"reasoning": "exact", "score": 5}},
    {"match": "Criterion: factual\n", "model": "llama3.2:1b", "response": {"reasoning": "vague", "score": 3}},
    {"match": "Criterion: helpfulness\n", "response": {"reasoning": "it answers", "score": 8}},
]
REQUEST = {"question": "What is the capital of France?", "answer": "Paris.", "ground_truth": "Paris",
           "panel": [{"model": "smollm2:135m"}, {"model": "llama3.2:1b"}]}


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    with scripted_mesh(tmp_path_factory.mktemp("jury-rest"), RULES) as mesh:
        yield mesh


@pytest.fixture(scope="module")
def rest(mesh: Mesh) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://{mesh.ingress}", timeout=60) as client:
        yield client


def test_two_model_panel_returns_the_aggregate(rest: httpx.Client) -> None:
    resp = rest.post("/api/v1/jury/evaluate", json={**REQUEST, "aggregation": "AGGREGATION_MAJORITY_VOTE"})
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/json"
    body = resp.json()
    got = [(v["juror"], v["model"], v["score"], v["verdict"]) for v in body["verdicts"]]
    assert got == [("smollm2:135m/factual", "smollm2:135m", 5, "VERDICT_PASS"),
                   ("llama3.2:1b/factual", "llama3.2:1b", 3, "VERDICT_FAIL")]
    # One of two passes: no strict majority.
    assert (body["score"], body["verdict"], body["aggregation"]) == (0.5, "VERDICT_FAIL", "AGGREGATION_MAJORITY_VOTE")
    assert body["agreement"].get("pairwise_agreement", 0) == 0  # JSON omits zero values
    assert body["agreement"]["min_score"] == 0.5 and body["agreement"]["max_score"] == 1
    assert body["quorum"] == 2 and body.get("failed_jurors", []) == []
    assert body["usage"]["model_calls"] == 2


def test_stream_is_sse_of_juror_verdicts_then_the_result(rest: httpx.Client) -> None:
    resp = rest.post("/api/v1/jury/evaluate:stream", json=[{"evaluate": REQUEST}])
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "text/event-stream"
    events = sse_events(resp.text)
    assert [next(iter(e)) for e in events] == ["juror_verdict", "juror_verdict", "result"], events
    assert {e["juror_verdict"]["model"] for e in events[:2]} == {"smollm2:135m", "llama3.2:1b"}
    result = events[-1]["result"]
    assert result["score"] == 0.75 and result["verdict"] == "VERDICT_PASS"  # mean of 1.0 and 0.5, threshold 0.75


def test_the_shortest_call_judges_with_the_default_panel(rest: httpx.Client) -> None:
    resp = rest.post("/api/v1/jury/evaluate", json={"question": "What is 2+2?", "answer": "4"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    got = [(v["juror"], v["model"], v["criterion"], v["score"]) for v in body["verdicts"]]
    assert got == [("factual", "smollm2:135m", "factual", 5), ("helpfulness", "smollm2:135m", "helpfulness", 8)]
    assert body["verdict"] == "VERDICT_PASS" and body["quorum"] == 2 and body["usage"]["model_calls"] == 2
