"""One trace per request, across the real ingress Envoy, the services, the egress Envoy and the
simulator, exported over OTLP/gRPC to a receiver in the test (tests/support/otlp.py)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from llmmesh.launcher.up import Mesh
from tests.support.mesh import running_mesh
from tests.support.otlp import Receiver, Span, by_trace, orphans, otlp_receiver, roots

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("tracing")]

LEGACY = {"question": "What is the capital of France?", "answer": "Paris.", "ground_truth": "Paris",
          "judge_type": "factual"}
PLAN = {"steps": [{"id": "s1", "description": "Find ALPHA", "kind": "model"},
                  {"id": "s2", "description": "Count", "kind": "tool", "tool": "calculator",
                   "arguments": {"expression": "20+22"}}]}
RULES = [{"match": "Criterion: factual\n", "response": {"reasoning": "Matches the reference exactly.", "score": 5}},
         {"match": "You are the planner", "response": PLAN},
         {"match": "Find ALPHA", "response": "ALPHA"},
         {"match": "ROLE-ALICE", "response": "ALICE says wheat"},
         {"match": "ROLE-BOB", "response": "BOB says spelt"}]
SERVER, CLIENT = 2, 3  # OTLP span kinds


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with otlp_receiver() as r:
        yield r


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[Mesh]:
    # Children (services, simulators) inherit the environment, and Envoy's config is rendered from it.
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100"}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        with running_mesh(tmp_path_factory.mktemp("tracing"), backend="sim", sim_count=2) as mesh:
            for port in (mesh.options.backend_port, mesh.options.backend_port + 1):
                httpx.put(f"http://127.0.0.1:{port}/_sim/scripts", json={"rules": RULES}, timeout=10
                          ).raise_for_status()
            yield mesh


def _judge(mesh: Mesh) -> httpx.Response:
    """One REST judge call, never asked before (so the response cache cannot answer it)."""
    body = {**LEGACY, "question": f"{LEGACY['question']} ({uuid.uuid4().hex})"}
    return httpx.post(f"http://{mesh.ingress}/api/v1/judge/evaluate", json=body, timeout=60)


def _judged(mesh: Mesh) -> None:
    resp = _judge(mesh)
    assert resp.status_code == 200, resp.text
    assert resp.json()["score"] == 5


def _trace_of_judge(receiver: Receiver, needs: set[str], services: frozenset[str] = frozenset()) -> list[Span]:
    """The newest trace whose root is the ingress's judge span, once it holds spans named in `needs`
    and spans from every one of `services` (each process exports on its own schedule)."""

    def complete(spans: list[Span]) -> list[Span] | None:
        for trace in by_trace(spans).values():
            names = {s.name for s in trace}
            if (any(r.service == "llmmesh-ingress" for r in roots(trace)) and needs <= names
                    and services <= {s.service for s in trace}):
                return trace
        return None

    receiver.wait_for(lambda spans: complete(spans) is not None)
    trace = complete(receiver.spans())
    assert trace is not None
    return trace


def _is_chat(s: Span) -> bool:
    """A GenAI chat span: `chat <model>`, or `chat` where the caller left the model to the default."""
    return s.name.split(" ")[0] == "chat"


def _one(trace: list[Span], service: str, name: str) -> Span:
    found = [s for s in trace if s.service == service and s.name == name]
    assert len(found) == 1, (service, name, sorted((s.service, s.name) for s in trace))
    return found[0]


def test_a_rest_judge_call_is_one_trace_across_envoy_services_and_backend(mesh: Mesh, receiver: Receiver) -> None:
    receiver.clear()
    _judged(mesh)
    judge_rpc = "llmmesh.judge.v1.JudgeService/Evaluate"
    chat_rpc = "llmmesh.inference.v1.InferenceService/CompleteChatStream"
    every_hop = frozenset({"llmmesh-ingress", "llmmesh", "llmmesh-egress", "llmmesh-sim"})
    trace = _trace_of_judge(receiver, {judge_rpc, chat_rpc, "POST", "POST /api/chat"}, every_hop)

    # One root: the ingress Envoy's span; every other span's parent is in the same trace.
    (root,) = roots(trace)
    assert root.service == "llmmesh-ingress" and root.kind == SERVER
    assert orphans(trace) == []
    services = {s.service for s in trace}
    assert every_hop <= services, services

    parent = {s.span_id: s for s in trace}
    judge = next(s for s in trace if s.service == "llmmesh" and s.name == judge_rpc and s.kind == SERVER)
    assert parent[judge.parent_span_id].service == "llmmesh-ingress"

    # The pattern's model call: a GenAI client span under the judge's RPC.
    model_call = next(s for s in trace if s.service == "llmmesh" and _is_chat(s) and s.kind == CLIENT)
    a = model_call.attributes
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.response.model"] == "smollm2:135m"
    assert a["gen_ai.usage.input_tokens"] > 0 and a["gen_ai.usage.output_tokens"] > 0
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["llmmesh.backend"] in ("sim1", "sim2") and a["llmmesh.failed_over"] is False
    assert a["llmmesh.cache_hit"] is False and "llmmesh.queue_wait_ms" in a
    assert "gen_ai.input.messages" not in a  # content only when switched on
    ancestor = parent[model_call.parent_span_id]
    while ancestor.span_id != judge.span_id:  # the model call happens inside the judge's RPC
        ancestor = parent[ancestor.parent_span_id]

    # Inference: the generation under the Chat RPC, its queue wait and its one backend attempt.
    chat_server = next(s for s in trace if s.name == chat_rpc and s.kind == SERVER)
    assert parent[parent[chat_server.parent_span_id].parent_span_id].span_id == model_call.span_id
    generation = next(s for s in trace if s.service == "llmmesh" and s.kind != CLIENT and _is_chat(s)
                      and s.parent_span_id == chat_server.span_id)
    assert generation.attributes["gen_ai.usage.output_tokens"] == a["gen_ai.usage.output_tokens"]
    (attempt,) = [s for s in trace if s.name.startswith("attempt ")]
    assert attempt.parent_span_id == generation.span_id
    assert attempt.attributes["llmmesh.attempt"] == 1 and attempt.attributes["llmmesh.failed_over"] is False
    queue = [s for s in trace if s.name == "queue wait"]
    assert queue and all(q.parent_span_id == generation.span_id for q in queue)

    # The backend call: HTTP client span (backend URL) → egress Envoy → the simulator's server span.
    http = _one(trace, "llmmesh", "POST")
    assert http.kind == CLIENT and http.parent_span_id == attempt.span_id
    assert http.attributes["llmmesh.backend.url"].endswith("/api/chat")
    assert http.attributes["http.response.status_code"] == 200
    egress = next(s for s in trace if s.service == "llmmesh-egress")
    assert egress.parent_span_id == http.span_id
    backend = _one(trace, "llmmesh-sim", "POST /api/chat")
    assert backend.kind == SERVER and parent[backend.parent_span_id].service == "llmmesh-egress"


def test_logs_carry_the_trace_id(mesh: Mesh, receiver: Receiver) -> None:
    receiver.clear()
    _judged(mesh)
    trace = _trace_of_judge(receiver, {"llmmesh.judge.v1.JudgeService/Evaluate"})
    trace_id = trace[0].trace_id
    lines = (Path(mesh.options.state_dir) / "logs" / "llmmesh.log").read_text().splitlines()
    logged = [json.loads(line) for line in lines if trace_id in line]
    assert any(e.get("msg") == "rpc finished" and e["grpc_method"].endswith("JudgeService/Evaluate")
               for e in logged), lines[-5:]
    assert all(e["trace_id"] == trace_id and len(e["span_id"]) == 16 for e in logged)


def test_a_mid_stream_failover_shows_two_attempts_in_one_trace(mesh: Mesh, receiver: Receiver) -> None:
    # sim1 fails every stream after 3 frames: a generation that lands there first continues on sim2.
    # (The launcher's simulators answer a continuation afresh, so the judge may then have to repair
    # its output, or give up: this test is about the trace, not the verdict.)
    sim1 = f"http://127.0.0.1:{mesh.options.backend_port}"
    httpx.put(f"{sim1}/_sim/faults", json={"spec": "fail_at_chunk=3"}, timeout=10).raise_for_status()

    def failed_over(spans: list[Span]) -> tuple[list[Span], list[Span]] | None:
        for trace in by_trace(spans).values():
            per_generation: dict[str, list[Span]] = {}
            for s in trace:
                if s.name.startswith("attempt "):
                    per_generation.setdefault(s.parent_span_id, []).append(s)
            two = next((a for a in per_generation.values() if len(a) == 2), None)
            if two is not None and any(r.service == "llmmesh-ingress" for r in roots(trace)):
                return trace, two
        return None

    try:
        receiver.clear()
        for _ in range(3):
            assert _judge(mesh).status_code in (200, 503)
        receiver.wait_for(lambda spans: failed_over(spans) is not None)
        found = failed_over(receiver.spans())
        assert found is not None
    finally:
        httpx.put(f"{sim1}/_sim/faults", json={"spec": ""}, timeout=10).raise_for_status()
    trace, attempts = found
    assert orphans(trace) == [] and len(roots(trace)) == 1
    first, second = sorted(attempts, key=lambda s: s.attributes["llmmesh.attempt"])
    assert (first.attributes["llmmesh.backend"], first.attributes["llmmesh.failed_over"]) == ("sim1", False)
    assert (second.attributes["llmmesh.backend"], second.attributes["llmmesh.failed_over"]) == ("sim2", True)
    assert first.attributes["llmmesh.attempt"] == 1 and second.attributes["llmmesh.attempt"] == 2
    generation = next(s for s in trace if s.span_id == first.parent_span_id)
    assert _is_chat(generation) and generation.attributes["llmmesh.failed_over"] is True
    assert generation.attributes["llmmesh.attempt"] == 2
    assert generation.attributes["llmmesh.backend"] == "sim1,sim2"
    (event,) = generation.events
    assert event[0] == "failover" and event[1]["llmmesh.backend"] == "sim1"
    # Each attempt went through the egress to its backend: HTTP client span → egress → simulator.
    for attempt in (first, second):
        (http,) = [s for s in trace if s.name == "POST" and s.parent_span_id == attempt.span_id]
        (egress,) = [s for s in trace if s.service == "llmmesh-egress" and s.parent_span_id == http.span_id]
        (backend,) = [s for s in trace if s.service == "llmmesh-sim" and s.parent_span_id == egress.span_id]
        assert backend.name == "POST /api/chat"


def test_latency_histograms_carry_the_trace_as_exemplar(mesh: Mesh, receiver: Receiver) -> None:
    receiver.clear()
    _judged(mesh)
    trace_id = _trace_of_judge(receiver, {"llmmesh.judge.v1.JudgeService/Evaluate"})[0].trace_id
    # Exemplars exist only in the OpenMetrics exposition, which Prometheus asks for.
    resp = httpx.get(f"http://127.0.0.1:{mesh.options.metrics_port}/metrics", timeout=10,
                     headers={"accept": "application/openmetrics-text; version=1.0.0"})
    assert resp.headers["content-type"].startswith("application/openmetrics-text")
    marked = [line for line in resp.text.splitlines() if f'trace_id="{trace_id}"' in line]
    assert any(line.startswith("llmmesh_inference_time_to_first_token_seconds_bucket") for line in marked), marked


def test_a_jury_call_shows_each_juror_under_the_jury_span_with_its_model_calls(mesh: Mesh,
                                                                              receiver: Receiver) -> None:
    receiver.clear()
    panel = [{"model": "smollm2:135m"}, {"model": "llama3.2:1b"}]
    body = {**LEGACY, "question": f"{LEGACY['question']} ({uuid.uuid4().hex})", "panel": panel}
    resp = httpx.post(f"http://{mesh.ingress}/api/v1/jury/evaluate", json=body, timeout=60)
    assert resp.status_code == 200, resp.text
    run_id = resp.json()["run_id"]
    jurors = {"juror smollm2:135m/factual", "juror llama3.2:1b/factual"}
    jury_rpc = "llmmesh.jury.v1.JuryService/Evaluate"
    trace = _trace_of_judge(receiver, {jury_rpc, *jurors})
    assert orphans(trace) == [] and len(roots(trace)) == 1

    jury = _one(trace, "llmmesh", jury_rpc)
    assert jury.kind == SERVER and jury.attributes["llmmesh.run_id"] == run_id
    assert jury.attributes["llmmesh.pattern"] == "jury"
    for name in jurors:
        juror = _one(trace, "llmmesh", name)
        assert juror.parent_span_id == jury.span_id  # the fan-out's tasks keep the RPC's span
        model = name.split(" ")[1].split("/")[0]
        assert juror.attributes["llmmesh.juror.model"] == model
        assert juror.attributes["llmmesh.juror.criterion"] == "factual"
        assert juror.attributes["llmmesh.juror.score"] == 5 and juror.attributes["llmmesh.juror.verdict"] == "pass"
        calls = [s for s in trace if _is_chat(s) and s.kind == CLIENT and s.parent_span_id == juror.span_id]
        assert [c.attributes["gen_ai.response.model"] for c in calls] == [model], calls


def test_a_judge_run_id_is_on_its_rpc_span(mesh: Mesh, receiver: Receiver) -> None:
    receiver.clear()
    resp = _judge(mesh)
    assert resp.status_code == 200, resp.text
    judge_rpc = "llmmesh.judge.v1.JudgeService/Evaluate"
    judge = _one(_trace_of_judge(receiver, {judge_rpc}), "llmmesh", judge_rpc)
    assert judge.attributes["llmmesh.run_id"] == resp.json()["run_id"]


def _trace_with(receiver: Receiver, needs: set[str]) -> list[Span]:
    receiver.wait_for(lambda spans: any(needs <= {s.name for s in t} for t in by_trace(spans).values()))
    return next(t for t in by_trace(receiver.spans()).values() if needs <= {s.name for s in t})


def test_plan_steps_are_spans_under_the_run_with_their_model_or_tool_call(mesh: Mesh, receiver: Receiver) -> None:
    receiver.clear()
    resp = httpx.post(f"http://{mesh.ingress}/api/v1/plan-execute/run", timeout=60,
                      json={"goal": f"Combine alpha with the count ({uuid.uuid4().hex})", "tools": ["calculator"]})
    assert resp.status_code == 200, resp.text
    rpc = "llmmesh.planexecute.v1.PlanExecuteService/Run"
    trace = _trace_with(receiver, {rpc, "plan_step s1", "plan_step s2"})
    run = _one(trace, "llmmesh", rpc)
    assert run.attributes["llmmesh.run_id"] == resp.json()["run_id"]
    s1, s2 = _one(trace, "llmmesh", "plan_step s1"), _one(trace, "llmmesh", "plan_step s2")
    assert s1.parent_span_id == run.span_id and s2.parent_span_id == run.span_id
    assert (s1.attributes["llmmesh.plan.step_kind"], s2.attributes["llmmesh.plan.step_kind"]) == ("model", "tool")
    assert s2.attributes["gen_ai.tool.name"] == "calculator" and s1.attributes["llmmesh.plan.revision"] == 0
    assert [s for s in trace if _is_chat(s) and s.kind == CLIENT and s.parent_span_id == s1.span_id]
    assert [s for s in trace if s.parent_span_id == s2.span_id]  # the tool call's own span


def test_collaboration_rounds_are_spans_holding_their_turns(mesh: Mesh, receiver: Receiver) -> None:
    receiver.clear()
    agents = [{"name": "alice", "system_prompt": "ROLE-ALICE"}, {"name": "bob", "system_prompt": "ROLE-BOB"}]
    resp = httpx.post(f"http://{mesh.ingress}/api/v1/collaborate/run", timeout=60,
                      json={"task": f"Pick a flour ({uuid.uuid4().hex})", "agents": agents,
                            "strategy": "STRATEGY_ROUND_ROBIN", "rounds": 2})
    assert resp.status_code == 200, resp.text
    rpc = "llmmesh.collaboration.v1.CollaborationService/Run"
    trace = _trace_with(receiver, {rpc, "round 1", "round 2"})
    run = _one(trace, "llmmesh", rpc)
    for n in (1, 2):
        round_ = _one(trace, "llmmesh", f"round {n}")
        assert round_.parent_span_id == run.span_id
        assert round_.attributes["llmmesh.collaboration.round"] == n
        assert round_.attributes["llmmesh.collaboration.strategy"] == "round_robin"
        turns = [s for s in trace if _is_chat(s) and s.kind == CLIENT and s.parent_span_id == round_.span_id]
        assert len(turns) == 2, [(s.name, s.parent_span_id) for s in trace]  # alice's and bob's turns


def _sample(metrics: str, name: str, labels: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
               if line.startswith(name + "{") and all(kv in line for kv in labels.split(",")))


def test_token_usage_is_counted_per_model_backend_and_key(mesh: Mesh) -> None:
    def scrape() -> str:
        return httpx.get(f"http://127.0.0.1:{mesh.options.metrics_port}/metrics", timeout=10).text

    before = scrape()
    _judged(mesh)
    after = scrape()
    for name, labels in (("llmmesh_inference_prompt_tokens_total", 'model="smollm2:135m"'),
                         ("llmmesh_key_tokens_total", 'key="anonymous",kind="prompt"'),  # auth is off
                         ("llmmesh_key_tokens_total", 'key="anonymous",kind="output"')):
        assert _sample(after, name, labels) > _sample(before, name, labels), (name, labels)
