"""Reflection over REST through the real Envoy (gRPC-JSON transcoding): the unary JSON answer and
the SSE stream, against the mesh's simulator with scripted drafts and critiques."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from llmmesh.launcher.up import Mesh
from tests.support.e2e import sse_events
from tests.support.mesh import scripted_mesh

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("reflection_rest")]

TASK = "Write a slogan for the REST-BAKERY."
# Revisions first (their prompt holds the draft and its feedback), then critiques, then the writer.
RULES = [
    {"match": "FEEDBACK-ONE", "response": "DRAFT-TWO Warm bread daily."},
    {"match": "DRAFT-TWO", "response": json.dumps({"score": 9, "feedback": "FEEDBACK-TWO great"})},
    {"match": "DRAFT-ONE", "response": json.dumps({"score": 4, "feedback": "FEEDBACK-ONE bland"})},
    {"match": "REST-BAKERY", "response": "DRAFT-ONE Bread."},
]
HISTORY = [{"round": 1, "draft": "DRAFT-ONE Bread.", "score": 4, "feedback": "FEEDBACK-ONE bland"},
           {"round": 2, "draft": "DRAFT-TWO Warm bread daily.", "score": 9, "feedback": "FEEDBACK-TWO great"}]


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    with scripted_mesh(tmp_path_factory.mktemp("reflection-rest"), RULES) as mesh:
        yield mesh


@pytest.fixture(scope="module")
def rest(mesh: Mesh) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://{mesh.ingress}", timeout=60) as client:
        yield client


def test_rest_improve_returns_the_json_result(rest: httpx.Client) -> None:
    resp = rest.post("/api/v1/reflection/improve", json={"task": TASK, "max_rounds": 3, "score_threshold": 8.5})
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/json"
    body = resp.json()
    assert body["stop_reason"] == "REFLECTION_STOP_REASON_THRESHOLD_REACHED"
    assert body["final_draft"] == "DRAFT-TWO Warm bread daily." and body["final_score"] == 9
    assert body["rounds"] == 2 and body["history"] == HISTORY
    assert body["model"] == "smollm2:135m"  # the mesh's default model, used when none is named
    assert body["usage"]["model_calls"] == 4


def test_rest_improve_stream_is_sse_ending_with_the_result(rest: httpx.Client) -> None:
    resp = rest.post("/api/v1/reflection/improve:stream", json=[{"improve": {"task": TASK}}])
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "text/event-stream"
    events = sse_events(resp.text)
    kinds = [next(iter(e)) for e in events]
    collapsed = [k for i, k in enumerate(kinds) if k != "delta" or i == 0 or kinds[i - 1] != "delta"]
    assert collapsed == ["delta", "draft", "critique", "delta", "draft", "critique", "result"], kinds
    assert [e["critique"]["score"] for e in events if "critique" in e] == [4, 9]
    result = events[-1]["result"]
    assert result["final_draft"] == "DRAFT-TWO Warm bread daily." and result["history"] == HISTORY


def test_rest_invalid_request_is_400_with_field_violations(rest: httpx.Client) -> None:
    resp = rest.post("/api/v1/reflection/improve", json={"task": "", "score_threshold": 11})
    assert resp.status_code == 400, resp.text
    body = resp.json()
    (detail,) = [d for d in body["details"] if d["@type"] == "type.googleapis.com/google.rpc.BadRequest"]
    assert {v["field"] for v in detail["field_violations"]} == {"task", "score_threshold"}
