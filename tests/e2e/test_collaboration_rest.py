"""Collaboration over REST through the real Envoy (gRPC-JSON transcoding): a unary debate as JSON,
a request with only a task, and a streamed round-robin whose human turn travels in the request's
JSON array."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from llmmesh.launcher.up import Mesh
from tests.support.e2e import sse_events
from tests.support.mesh import scripted_mesh

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("collaboration_rest")]

TASK = "Pick a flour for REST-BREAD."
HUMAN = "HUMAN-SAYS try rye"
VERDICT = {"rationale": "bob's case was stronger", "winner": "bob"}
# An agent is matched by its role (system prompt), and answers differently once it has been shown
# the other agent's round-1 answer or the human's words.
RULES = [
    {"match": "regex:(?s)ROLE-JUDGE.*ALICE-R2.*BOB-R2", "response": json.dumps(VERDICT)},
    {"match": "regex:(?s)ROLE-ALICE.*" + HUMAN, "response": "ALICE heard the human"},
    {"match": "regex:(?s)ROLE-ALICE.*BOB-R1", "response": "ALICE-R2 rye"},
    {"match": "regex:(?s)ROLE-BOB.*ALICE-R1", "response": "BOB-R2 spelt"},
    {"match": "ROLE-ALICE", "response": "ALICE-R1 wheat"},
    {"match": "ROLE-BOB", "response": "BOB-R1 spelt"},
]
AGENTS = [{"name": "alice", "system_prompt": "ROLE-ALICE"}, {"name": "bob", "system_prompt": "ROLE-BOB"}]


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    with scripted_mesh(tmp_path_factory.mktemp("collaboration-rest"), RULES) as mesh:
        yield mesh


@pytest.fixture(scope="module")
def rest(mesh: Mesh) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://{mesh.ingress}", timeout=60) as client:
        yield client


def test_rest_debate_returns_the_winners_answer_the_verdict_and_transcript(rest: httpx.Client) -> None:
    resp = rest.post("/api/v1/collaborate/run", json={
        "task": TASK, "agents": AGENTS, "strategy": "STRATEGY_DEBATE", "rounds": 2,
        "aggregator": {"name": "judge", "system_prompt": "ROLE-JUDGE"}})
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/json"
    body = resp.json()
    assert body["answer"] == "BOB-R2 spelt" and body["strategy"] == "STRATEGY_DEBATE" and body["rounds"] == 2
    assert body["verdict"] == VERDICT
    spoken = [(t["agent"], t["round"], t["content"]) for t in body["transcript"]]
    assert spoken[:4] == [("alice", 1, "ALICE-R1 wheat"), ("bob", 1, "BOB-R1 spelt"), ("alice", 2, "ALICE-R2 rye"),
                          ("bob", 2, "BOB-R2 spelt")]
    assert spoken[4][:2] == ("judge", 3) and json.loads(spoken[4][2]) == VERDICT
    assert body["usage"]["model_calls"] == 5


def test_rest_run_with_only_a_task_runs_the_default_mixture(rest: httpx.Client) -> None:
    resp = rest.post("/api/v1/collaborate/run", json={"task": TASK})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["strategy"] == "STRATEGY_MIXTURE_OF_AGENTS" and body["rounds"] == 1 and "verdict" not in body
    spoken = [(t["agent"], t["round"]) for t in body["transcript"]]
    assert spoken == [("expert", 1), ("pragmatist", 1), ("moderator", 2)]
    assert body["answer"] and body["answer"] == body["transcript"][-1]["content"]


def test_rest_stream_takes_a_human_turn_from_the_json_array(rest: httpx.Client) -> None:
    run = {"task": TASK, "agents": AGENTS, "strategy": "STRATEGY_ROUND_ROBIN", "rounds": 2, "human_in_loop": True}
    resp = rest.post("/api/v1/collaborate/run:stream", json=[{"run": run}, {"human": {"content": HUMAN}}])
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "text/event-stream"
    events = sse_events(resp.text)
    assert next(iter(events[-1])) == "result", events[-1]
    assert [e["awaiting_human"] for e in events if "awaiting_human" in e] == [{"round": 1}]
    assert {e["delta"]["source"] for e in events if "delta" in e} == {"alice", "bob"}
    result = events[-1]["result"]
    spoken = [(t["agent"], t["round"], t.get("human", False)) for t in result["transcript"]]
    assert spoken == [("alice", 1, False), ("bob", 1, False), ("human", 1, True), ("alice", 2, False),
                      ("bob", 2, False)]
    assert result["transcript"][2]["content"] == HUMAN
    assert result["transcript"][3]["content"] == "ALICE heard the human"
    assert result["answer"] == result["transcript"][-1]["content"]
