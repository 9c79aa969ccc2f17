"""Comparisons through the real Envoy: REST (JSON ranking), the `:stream` route as SSE with each
model's deltas side by side, gRPC through grpcurl, and bad input as a 400 naming the fields."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from llmmesh.launcher.up import Mesh
from tests.support.e2e import grpcurl, sse_events
from tests.support.mesh import scripted_mesh

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("compare_rest")]

PROMPT = "What is the capital of France?"
# The judge's rules first: its prompts quote the question the answers' rules match.
RULES = [
    {"match": "regex:(?s)compare two answers.*answer_1>\nParis", "response": {"reasoning": "r", "winner": "1"}},
    {"match": "compare two answers", "response": {"reasoning": "r", "winner": "2"}},
    {"match": "regex:(?s)Criterion: helpfulness.*<answer>\nParis", "response": {"reasoning": "right", "score": 9}},
    {"match": "Criterion: helpfulness", "response": {"reasoning": "wrong", "score": 2}},
    {"match": PROMPT, "model": "smollm2:135m", "response": "Lyon, probably."},
    {"match": PROMPT, "model": "llama3.2:1b", "response": "Paris is the capital of France."},
]
MODELS = ["smollm2:135m", "llama3.2:1b"]


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    with scripted_mesh(tmp_path_factory.mktemp("compare-rest"), RULES) as mesh:
        yield mesh


@pytest.fixture(scope="module")
def rest(mesh: Mesh) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://{mesh.ingress}", timeout=60) as client:
        yield client


def test_rest_ranks_the_models(rest: httpx.Client) -> None:
    resp = rest.post("/api/v1/compare/run", json={"prompt": PROMPT, "models": MODELS, "pairwise": True})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    ranking = [(r["model"], r["rank"], r["wins"]) for r in body["ranking"]]
    assert ranking == [("llama3.2:1b", 1, 1), ("smollm2:135m", 2, 0)]
    best = body["ranking"][0]
    assert best["score"] == pytest.approx(8 / 9) and best["output_tokens"] > 0 and best["latency_ms"] > 0
    assert best["tokens_per_second"] > 0
    assert [a["text"] for a in body["answers"]] == ["Lyon, probably.", "Paris is the capital of France."]
    assert body["comparisons"][0]["winner"] == "llama3.2:1b" and body["comparisons"][0]["consistent"]
    assert resp.headers["x-llmmesh-run-id"] == body["run_id"]
    assert rest.get(f"/api/v1/runs/{body['run_id']}").json()["run"]["pattern"] == "compare"


def test_the_stream_is_sse_of_both_answers_then_the_result(rest: httpx.Client) -> None:
    resp = rest.post("/api/v1/compare/run:stream", json=[{"run": {"prompt": PROMPT, "models": MODELS}}])
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "text/event-stream"
    events = sse_events(resp.text)
    assert next(iter(events[-1])) == "result"
    sources = {e["delta"]["source"] for e in events if "delta" in e}
    assert sources == set(MODELS)
    assert [next(iter(e)) for e in events].count("answer") == 2
    assert events[-1]["result"]["ranking"][0]["model"] == "llama3.2:1b"


def test_grpc_through_grpcurl(mesh: Mesh) -> None:
    done = grpcurl("-plaintext", "-d", json.dumps({"prompt": PROMPT, "models": MODELS}), mesh.ingress,
                   "llmmesh.compare.v1.CompareService/Run")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ranking"][0]["model"] == "llama3.2:1b"


@pytest.mark.parametrize(("models", "field", "description"), [
    ([], "models", "name at least two models to compare; got 0"),
    (["smollm2:135m"], "models", "name at least two models to compare; got 1"),
    (["smollm2:135m", "smollm2:135m"], "models[1]", "duplicates models[0] 'smollm2:135m'"),
])
def test_bad_input_is_a_400_naming_the_field(rest: httpx.Client, models: list[str], field: str,
                                             description: str) -> None:
    resp = rest.post("/api/v1/compare/run", json={"prompt": PROMPT, "models": models})
    assert resp.status_code == 400, resp.text
    (detail,) = [d for d in resp.json()["details"] if d["@type"].endswith("BadRequest")]
    assert [(v["field"], v["description"]) for v in detail["field_violations"]] == [(field, description)]
