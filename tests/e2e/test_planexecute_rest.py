"""Plan-and-execute over REST through the real Envoy (gRPC-JSON transcoding): a run as JSON, the
`:stream` route as SSE (also with the approval sent in the same JSON array), and validation."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from llmmesh.launcher.up import Mesh
from tests.support.e2e import sse_events
from tests.support.mesh import scripted_mesh

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("planexecute_rest")]

# As the planner writes it: s3 depends on s1 and s2 because it inserts their results.
PLAN = {"steps": [
    {"id": "s1", "description": "Find ALPHA", "kind": "model"},
    {"id": "s2", "description": "Count", "kind": "tool", "tool": "calculator", "arguments": {"expression": "20+22"}},
    {"id": "s3", "description": "Combine {s1} with {s2}", "kind": "model"},
]}
RULES = [
    {"match": "Write the final answer to the goal", "response": "ALPHA-42 is the answer"},
    {"match": "You are the planner", "response": PLAN},
    {"match": "Find ALPHA", "response": "ALPHA"},
    {"match": "Combine ALPHA with 42", "response": "ALPHA-42"},
]
REQUEST = {"goal": "Combine alpha with the count", "tools": ["calculator"]}


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    with scripted_mesh(tmp_path_factory.mktemp("planexecute-rest"), RULES) as mesh:
        yield mesh


@pytest.fixture(scope="module")
def rest(mesh: Mesh) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://{mesh.ingress}", timeout=60) as client:
        yield client


def test_run_returns_the_answer_plan_and_step_results(rest: httpx.Client) -> None:
    resp = rest.post("/api/v1/plan-execute/run", json=REQUEST)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/json"
    body = resp.json()
    assert body["answer"].strip() == "ALPHA-42 is the answer"
    assert [(s["id"], s["kind"], s.get("depends_on", [])) for s in body["plan"]["steps"]] == [
        ("s1", "STEP_KIND_MODEL", []), ("s2", "STEP_KIND_TOOL", []), ("s3", "STEP_KIND_MODEL", ["s1", "s2"])]
    outputs = {s["step_id"]: (s["status"], s["output"].strip()) for s in body["steps"]}
    assert outputs == {"s1": ("STEP_STATUS_SUCCEEDED", "ALPHA"), "s2": ("STEP_STATUS_SUCCEEDED", "42"),
                       "s3": ("STEP_STATUS_SUCCEEDED", "ALPHA-42")}
    assert body["model"] == "smollm2:135m" and body["usage"]["model_calls"] == 4


def test_stream_is_sse_of_plan_steps_tokens_then_the_result(rest: httpx.Client) -> None:
    resp = rest.post("/api/v1/plan-execute/run:stream", json=[{"run": REQUEST}])
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "text/event-stream"
    events = sse_events(resp.text)
    kinds = [next(iter(e)) for e in events]
    assert kinds[0] == "plan" and kinds[-1] == "result"
    assert {"step_started", "step_result", "answer"} <= set(kinds)
    started = [e["step_started"]["step_id"] for e in events if "step_started" in e]
    finished = [e["step_result"]["step_id"] for e in events if "step_result" in e]
    assert started.index("s3") == 2 and finished.index("s3") == 2  # s3 waits for s1 and s2
    assert events[-1]["result"]["answer"].strip() == "ALPHA-42 is the answer"


def test_approval_can_ride_in_the_same_json_array(rest: httpx.Client) -> None:
    messages = [{"run": {**REQUEST, "require_approval": True}},
                {"decision": {"action": "PLAN_DECISION_ACTION_APPROVE"}}]
    resp = rest.post("/api/v1/plan-execute/run:stream", json=messages)
    assert resp.status_code == 200, resp.text
    events = sse_events(resp.text)
    assert events[0]["plan"]["awaiting_approval"] is True
    assert next(iter(events[-1])) == "result"


def test_approval_on_the_unary_route_is_400(rest: httpx.Client) -> None:
    resp = rest.post("/api/v1/plan-execute/run", json={**REQUEST, "require_approval": True})
    assert resp.status_code == 400, resp.text
    (detail,) = [d for d in resp.json()["details"] if d["@type"] == "type.googleapis.com/google.rpc.BadRequest"]
    assert [v["field"] for v in detail["field_violations"]] == ["require_approval"]
