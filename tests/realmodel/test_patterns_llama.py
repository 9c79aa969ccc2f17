"""Every pattern end to end on the real model: judge, jury, tool use, plan-and-execute, reflection
and collaboration through the Envoy ingress, over gRPC and over REST (JSON, and SSE on the
`:stream` routes), with llama.cpp `llama-server` running SmolLM2-135M behind the inference service.

These tests check structure and validity, not quality. A 135M model often cannot write the
structured output a pattern asks for (a juror's verdict, a plan, a critique); then the run's
documented error is the correct outcome, and the test asserts that instead: the documented code
with an ErrorInfo giving the documented reason and metadata, never INTERNAL. Each test prints which
way its run went (`-s` or `-rP` shows it). Greedy decoding repeats a run only within one mesh: the
key order of a JSON schema sent as a protobuf Struct changes from process to process, and with it
what the model writes first.

Budget: SmolLM2 decodes ~100 tokens/s on 2 shared cores. Every request asks for few tokens, greedy
(temperature 0, fixed seed), with the fewest jurors, steps, rounds and agents that still exercise
the pattern. Replies are compared as JSON (gRPC messages through MessageToDict, REST bodies as they
come), so both faces share one set of checks.
"""

from __future__ import annotations

import json
import math
import re
import statistics
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2  # noqa: F401  (ErrorInfo: Any → JSON)
from grpc_status import rpc_status

from llmmesh.collaboration.v1 import collaboration_service_pb2 as collab_pb
from llmmesh.collaboration.v1 import collaboration_service_pb2_grpc as collab_grpc
from llmmesh.common.v1 import common_pb2
from llmmesh.judge.v1 import judge_service_pb2 as judge_pb
from llmmesh.judge.v1 import judge_service_pb2_grpc as judge_grpc
from llmmesh.jury.v1 import jury_service_pb2 as jury_pb
from llmmesh.jury.v1 import jury_service_pb2_grpc as jury_grpc
from llmmesh.launcher.backend_choice import SMOLLM2_MODEL
from llmmesh.launcher.up import Mesh
from llmmesh.planexecute.v1 import planexecute_service_pb2 as plan_pb
from llmmesh.planexecute.v1 import planexecute_service_pb2_grpc as plan_grpc
from llmmesh.reflection.v1 import reflection_service_pb2 as reflection_pb
from llmmesh.reflection.v1 import reflection_service_pb2_grpc as reflection_grpc
from llmmesh.tooluse.v1 import tooluse_service_pb2 as tooluse_pb
from llmmesh.tooluse.v1 import tooluse_service_pb2_grpc as tooluse_grpc
from tests.support.e2e import sse_events

pytestmark = [pytest.mark.realmodel, pytest.mark.xdist_group("realmodel")]

# A pattern run is several model calls; a malformed answer is retried (3 attempts per structured
# call) and the ingress retries UNAVAILABLE, so a failing run costs up to 9 calls. Generous, so a
# busy machine slows the tests down instead of failing them.
DEADLINE_S = 180.0
SEED = 7


def greedy(max_tokens: int) -> common_pb2.GenerationOptions:
    return common_pb2.GenerationOptions(max_tokens=max_tokens, temperature=0.0, seed=SEED)


def greedy_json(max_tokens: int) -> dict[str, Any]:
    return {"max_tokens": max_tokens, "temperature": 0, "seed": SEED}


def as_dict(msg: Message) -> dict[str, Any]:
    """A gRPC message as the REST face shows it: proto field names, enum names, and fields at their
    default value printed (Envoy's transcoder runs with always_print_primitive_fields)."""
    return json_format.MessageToDict(msg, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def usage(doc: dict[str, Any]) -> tuple[int, int, int]:
    u = doc.get("usage", {})
    return u.get("prompt_tokens", 0), u.get("output_tokens", 0), u.get("model_calls", 0)


def assert_usage(doc: dict[str, Any], min_calls: int) -> None:
    prompt, output, calls = usage(doc)
    assert calls >= min_calls and prompt > 0 and output > 0, doc.get("usage")


# ---- the documented failures -----------------------------------------------------------------

MALFORMED = "MALFORMED_MODEL_OUTPUT"
QUORUM = "QUORUM_NOT_REACHED"
REPLANS = "REPLANS_EXHAUSTED"
# reason → (status code, ErrorInfo metadata keys), as the pattern modules document them.
DOCUMENTED = {
    MALFORMED: (code_pb2.UNAVAILABLE, {"model", "attempts"}),
    QUORUM: (code_pb2.UNAVAILABLE, {"quorum", "answered", "panel", "failed_jurors"}),
    REPLANS: (code_pb2.ABORTED, {"step_id", "error_code", "replans"}),
}
HTTP_STATUS = {code_pb2.UNAVAILABLE: 503, code_pb2.ABORTED: 409}
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"


@dataclass(frozen=True)
class Failure:
    """A run's error as the client saw it: a google.rpc.Status with one ErrorInfo."""

    code: int
    message: str
    reason: str
    domain: str
    metadata: dict[str, str]


def failure(status: dict[str, Any]) -> Failure:
    """A google.rpc.Status (as JSON) → Failure; the status must be a documented one, never INTERNAL."""
    code = status.get("code", 0)
    assert code not in (code_pb2.OK, code_pb2.INTERNAL, code_pb2.UNKNOWN), f"not a documented failure: {status}"
    infos = [d for d in status.get("details", []) if d.get("@type") == ERROR_INFO]
    assert len(infos) == 1, f"a documented failure carries one ErrorInfo: {status}"
    info = infos[0]
    return Failure(code, status.get("message", ""), info.get("reason", ""), info.get("domain", ""),
                   info.get("metadata", {}))


def assert_documented(f: Failure, *allowed: str) -> None:
    assert f.reason in allowed, f"{f.reason!r} is not one of this pattern's documented failures {allowed}: {f}"
    code, keys = DOCUMENTED[f.reason]
    assert f.code == code and f.domain == "llmmesh", f
    assert keys <= f.metadata.keys(), f
    assert f.message.strip() and "Traceback" not in f.message, f
    if f.reason == MALFORMED:
        assert "malformed structured output" in f.message and int(f.metadata["attempts"]) >= 1, f


def status_of(exc: grpc.aio.AioRpcError) -> dict[str, Any]:
    rich = rpc_status.from_call(exc)
    if rich is None:
        rich = status_pb2.Status(code=exc.code().value[0], message=exc.details() or "")
    return as_dict(rich)


# ---- calling: every face returns (reply or events, Failure | None) ------------------------------

async def grpc_unary(call: Any) -> tuple[dict[str, Any] | None, Failure | None]:
    try:
        return as_dict(await call), None
    except grpc.aio.AioRpcError as exc:
        return None, failure(status_of(exc))


def terminal(events: list[dict[str, Any]], outcome: Failure | None) -> tuple[list[dict[str, Any]], Failure | None]:
    """Checks that a stream ended with exactly one terminal event (`result` or `error`), last."""
    assert events, "the stream ended without a terminal event"
    kinds = [next(iter(e)) for e in events]
    ends = [k for k in kinds if k in ("result", "error")]
    assert ends == [kinds[-1]] == (["error"] if outcome else ["result"]), kinds
    return events, outcome


async def grpc_stream(call: Any) -> tuple[list[dict[str, Any]], Failure | None]:
    """Every event of a pattern stream (the terminal one included) and how the run ended: by a
    result, by an `error` event (then the same status), or by a status before any event."""
    events: list[dict[str, Any]] = []
    try:
        async for ev in call:
            events.append(as_dict(ev))
    except grpc.aio.AioRpcError as exc:
        status = status_of(exc)
        if not events:
            return events, failure(status)
        assert "error" in events[-1], f"the stream failed without an error event: {status}"
        assert events[-1]["error"].get("code") == status.get("code"), (events[-1], status)
        return terminal(events, failure(events[-1]["error"]))
    return terminal(events, None)


def rest_failure(resp: httpx.Response) -> Failure:
    assert resp.headers["content-type"].startswith("application/json"), resp.headers
    f = failure(resp.json())
    assert resp.status_code == HTTP_STATUS.get(f.code), (resp.status_code, f)
    return f


async def rest_unary(rest: httpx.AsyncClient, path: str, body: dict[str, Any]
                     ) -> tuple[dict[str, Any] | None, Failure | None]:
    resp = await rest.post(path, json=body)
    if resp.status_code != 200:
        return None, rest_failure(resp)
    assert resp.headers["content-type"].startswith("application/json"), resp.headers
    return resp.json(), None


async def rest_sse(rest: httpx.AsyncClient, path: str, first: dict[str, Any]
                   ) -> tuple[list[dict[str, Any]], Failure | None]:
    """A `:stream` route: a JSON array of stream messages in, Server-Sent Events out."""
    resp = await rest.post(path, json=[first])
    if resp.status_code != 200:  # failed before the first event: the status is the HTTP answer
        return [], rest_failure(resp)
    assert resp.headers["content-type"].startswith("text/event-stream"), resp.headers
    events = sse_events(resp.text)
    assert all(len(e) == 1 for e in events), events
    return terminal(events, failure(events[-1]["error"]) if "error" in events[-1] else None)


def of_kind(events: Iterable[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e[kind] for e in events if kind in e]


def report(what: str, started: float, outcome: Failure | None, detail: str) -> None:
    how = f"{outcome.reason} ({code_pb2.Code.Name(outcome.code)}): {outcome.message}" if outcome else detail
    print(f"{what}: {time.monotonic() - started:.1f}s; {how}")


@pytest.fixture
async def channel(mesh: Mesh) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(mesh.ingress) as ch:
        yield ch


@pytest.fixture
async def rest(mesh: Mesh) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://{mesh.ingress}", timeout=DEADLINE_S, trust_env=False) as client:
        yield client


@pytest.fixture
async def criteria(rest: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    """The judge's built-in criteria (scales, pass thresholds), as the service lists them."""
    resp = await rest.get("/api/v1/judge/criteria")
    assert resp.status_code == 200, resp.text
    return {c["name"]: c for c in resp.json()["criteria"]}


# ---- judge -------------------------------------------------------------------------------------

PAIRWISE_SCORE = {"a": 1.0, "b": 0.0, "tie": 0.5}


def assert_pointwise(result: dict[str, Any], criterion: dict[str, Any]) -> None:
    lo, hi = criterion["min_score"], criterion["max_score"]
    assert result["judge"] == SMOLLM2_MODEL, result
    assert (result["criterion"], result["min_score"], result["max_score"]) == (criterion["name"], lo, hi), result
    score = result["score"]
    assert lo <= score <= hi and float(score).is_integer(), result  # built-in scales are integral
    assert result["verdict"] == ("pass" if score >= criterion["pass_threshold"] else "fail"), result
    assert result["reasoning"], result
    assert "pairwise" not in result, result
    assert_usage(result, 1)


def assert_pairwise(result: dict[str, Any]) -> None:
    orders = result["pairwise"]["orders"]
    assert [o["order"] for o in orders] == ["a,b", "b,a"], orders
    winners = [o["winner"] for o in orders]
    assert set(winners) <= set(PAIRWISE_SCORE) and all(o["reasoning"] for o in orders), orders
    consistent = winners[0] == winners[1]
    assert result["pairwise"]["consistent"] is consistent, result
    assert result["verdict"] == (winners[0] if consistent else "tie"), result
    assert result["score"] == PAIRWISE_SCORE[result["verdict"]], result
    assert (result["min_score"], result["max_score"]) == (0, 1), result
    assert result["judge"] == SMOLLM2_MODEL and result["criterion"] == "factual", result
    assert_usage(result, 2)


async def test_judge_pairwise_over_grpc_stream_runs_both_orders(channel: grpc.aio.Channel) -> None:
    started = time.monotonic()
    req = judge_pb.EvaluateRequest(question="What is 2 + 2?", answer="4", answer_b="5",
                                   mode=judge_pb.JUDGE_MODE_PAIRWISE, options=greedy(48))
    call = judge_grpc.JudgeServiceStub(channel).EvaluateStream(
        iter([judge_pb.EvaluateStreamRequest(evaluate=req)]), timeout=DEADLINE_S)
    events, failed = await grpc_stream(call)
    reasoning = of_kind(events, "reasoning")
    assert reasoning and {r.get("source") for r in reasoning} <= {"a,b", "b,a"}, reasoning
    verdicts = of_kind(events, "order_verdict")
    if failed:
        assert_documented(failed, MALFORMED)  # one order's answer stayed malformed: the comparison fails
        assert len(verdicts) <= 1, verdicts
    else:
        result = events[-1]["result"]
        assert_pairwise(result)
        # Each order's verdict was streamed as it came, and is the one in the result.
        assert sorted(verdicts, key=lambda o: o["order"]) == result["pairwise"]["orders"], verdicts
    report("judge pairwise, gRPC stream", started, failed,
           "" if failed else f"winners {[o['winner'] for o in verdicts]} → {events[-1]['result']['verdict']}")


async def test_judge_pointwise_over_rest_sse_streams_reasoning_then_the_verdict(
        rest: httpx.AsyncClient, criteria: dict[str, dict[str, Any]]) -> None:
    started = time.monotonic()
    body = {"question": "What is the capital of France?", "answer": "Paris.", "ground_truth": "Paris",
            "judge_type": "factual", "options": greedy_json(48)}
    events, failed = await rest_sse(rest, "/api/v1/judge/evaluate:stream", {"evaluate": body})
    assert not of_kind(events, "order_verdict"), events
    if failed:
        assert_documented(failed, MALFORMED)
    else:
        result = events[-1]["result"]
        assert_pointwise(result, criteria["factual"])
        kinds = [next(iter(e)) for e in events]
        assert kinds[:-1] == ["reasoning"] * (len(events) - 1) and len(events) > 2, kinds
        if usage(result)[2] == 1:  # one attempt: the streamed reasoning is exactly the verdict's JSON
            streamed = json.loads("".join(r["text"] for r in of_kind(events, "reasoning")))
            assert (streamed["score"], streamed["reasoning"]) == (result["score"], result["reasoning"]), streamed
    report("judge pointwise, REST SSE", started, failed,
           "" if failed else f"score {events[-1]['result']['score']} {events[-1]['result']['verdict']}")


# ---- jury --------------------------------------------------------------------------------------

JURY_CASE = {"question": "What is 2 + 2?", "answer": "4", "ground_truth": "4"}
PANEL = [("fact", "factual"), ("rel", "relevance")]


def jury_request() -> jury_pb.EvaluateRequest:
    return jury_pb.EvaluateRequest(**JURY_CASE, panel=[jury_pb.Juror(name=n, criterion=c) for n, c in PANEL],
                                   options=greedy(48))


def assert_juror_verdicts(verdicts: list[dict[str, Any]], criteria: dict[str, dict[str, Any]]) -> None:
    """One verdict per juror, in panel order: a valid grade, or the juror's own documented failure."""
    assert [(v["juror"], v["criterion"]) for v in verdicts] == PANEL, verdicts
    for v in verdicts:
        if "error" in v:
            assert_documented(failure(v["error"]), MALFORMED)
            continue
        c = criteria[v["criterion"]]
        assert v["model"] == SMOLLM2_MODEL, v
        assert c["min_score"] <= v["score"] <= c["max_score"], v
        assert close(v["normalized_score"], (v["score"] - c["min_score"]) / (c["max_score"] - c["min_score"])), v
        assert v["verdict"] == ("pass" if v["score"] >= c["pass_threshold"] else "fail"), v
        assert v["reasoning"], v


def assert_jury(result: dict[str, Any], criteria: dict[str, dict[str, Any]], quorum: int) -> None:
    verdicts = result["verdicts"]
    assert_juror_verdicts(verdicts, criteria)
    answered = [v for v in verdicts if "error" not in v]
    assert result["failed_jurors"] == [v["juror"] for v in verdicts if "error" in v], result
    assert result["quorum"] == quorum and len(answered) >= quorum, result
    score, verdict = result["score"], result["verdict"]
    assert 0 <= score <= 1, result
    normalised = [v["normalized_score"] for v in answered]
    if result["aggregation"] == "AGGREGATION_MAJORITY_VOTE":
        passing = sum(v["verdict"] == "pass" for v in answered)
        assert close(score, passing / len(answered)), result
        assert verdict == ("pass" if passing * 2 > len(answered) else "fail"), result
    else:
        assert result["aggregation"] == "AGGREGATION_MEAN", result
        thresholds = [(c["pass_threshold"] - c["min_score"]) / (c["max_score"] - c["min_score"])
                      for c in (criteria[v["criterion"]] for v in answered)]
        assert close(score, statistics.fmean(normalised)), result
        assert verdict == ("pass" if score >= statistics.fmean(thresholds) else "fail"), result
    agreement = result["agreement"]
    assert close(agreement["min_score"], min(normalised)) and close(agreement["max_score"], max(normalised)), result
    assert 0 <= agreement["verdict_agreement"] <= 1 and 0 <= agreement["pairwise_agreement"] <= 1, result
    assert_usage(result, len(verdicts))


def assert_quorum_failure(f: Failure, quorum: int, verdicts: list[dict[str, Any]] | None) -> None:
    assert_documented(f, QUORUM)
    m = f.metadata
    assert (int(m["quorum"]), int(m["panel"])) == (quorum, len(PANEL)) and int(m["answered"]) < quorum, f
    if verdicts is not None:  # streamed: the failure names exactly the jurors that failed
        failed = [v["juror"] for v in verdicts if "error" in v]
        assert m["failed_jurors"].split(",") == failed and int(m["answered"]) == len(PANEL) - len(failed), f


def jury_summary(result: dict[str, Any]) -> str:
    grades = [(v["juror"], v.get("score") if "error" not in v else "malformed") for v in result["verdicts"]]
    return f"{grades} → {result['score']:.2f} {result['verdict']}"


async def test_jury_of_two_over_grpc_stream_sends_each_verdict_then_the_aggregate(
        channel: grpc.aio.Channel, criteria: dict[str, dict[str, Any]]) -> None:
    started = time.monotonic()
    call = jury_grpc.JuryServiceStub(channel).EvaluateStream(
        iter([jury_pb.EvaluateStreamRequest(evaluate=jury_request())]), timeout=DEADLINE_S)
    events, failed = await grpc_stream(call)
    # Both jurors report, failed or not, before the jury decides: the default quorum is both of them.
    streamed = of_kind(events, "juror_verdict")
    assert [next(iter(e)) for e in events[:-1]] == ["juror_verdict"] * len(PANEL), events
    streamed.sort(key=lambda v: [n for n, _ in PANEL].index(v["juror"]))
    assert_juror_verdicts(streamed, criteria)
    if failed:
        assert_quorum_failure(failed, 2, streamed)
    else:
        result = events[-1]["result"]
        assert_jury(result, criteria, quorum=2)
        assert result["verdicts"] == streamed, streamed  # the streamed verdicts are the ones aggregated
    report("jury of 2, gRPC stream", started, failed, "" if failed else jury_summary(events[-1]["result"]))


async def test_jury_of_two_over_rest_majority_vote_with_quorum_one(
        rest: httpx.AsyncClient, criteria: dict[str, dict[str, Any]]) -> None:
    started = time.monotonic()
    body = json_format.MessageToDict(jury_request(), preserving_proto_field_name=True)  # as a REST client writes it
    body.update(aggregation="AGGREGATION_MAJORITY_VOTE", quorum=1)
    result, failed = await rest_unary(rest, "/api/v1/jury/evaluate", body)
    if failed:
        assert_quorum_failure(failed, 1, None)
    else:
        assert result is not None
        assert_jury(result, criteria, quorum=1)
    report("jury of 2, REST", started, failed, "" if failed else jury_summary(result or {}))


# ---- tool use ----------------------------------------------------------------------------------

STOP_REASONS = ("STOP_REASON_ANSWERED", "STOP_REASON_MAX_STEPS")
TOOL_STEPS = 2


def assert_tool_run(result: dict[str, Any]) -> None:
    """A finished run whose tool calls (if the model made any) were run and reported in order."""
    assert result["stop_reason"] in STOP_REASONS, result
    assert result["model"] == SMOLLM2_MODEL, result
    steps = result["steps"]
    assert 1 <= steps <= TOOL_STEPS, result
    if result["stop_reason"] == "STOP_REASON_MAX_STEPS":
        assert steps == TOOL_STEPS, result
    calls, results = result["calls"], result["results"]
    # SmolLM2 need not call the calculator; whatever it called must be reported whole.
    assert [(c["call_id"], c["name"]) for c in calls] == [(r["call_id"], r["name"]) for r in results], result
    assert len({c["call_id"] for c in calls}) == len(calls) and all(c["name"] == "calculator" for c in calls), calls
    last_step = steps - 1 if result["stop_reason"] == "STOP_REASON_ANSWERED" else steps
    assert all(1 <= c["step"] <= last_step for c in calls), calls
    for r in results:
        assert r["duration_ms"] >= 0, r
        if "error" in r:  # a bad expression is reported to the model, not raised
            assert r["error"]["code"] not in (code_pb2.OK, code_pb2.INTERNAL) and r["error"]["message"], r
        else:
            float(r["output"])  # the calculator answers with a number
    assert usage(result)[2] == steps, result  # one model call per step, no more


def tool_summary(result: dict[str, Any]) -> str:
    return (f"{result['stop_reason']} after {result['steps']} step(s), {len(result['calls'])} tool call(s), "
            f"answer {result['answer'][:60]!r}")


async def test_tool_use_over_grpc_with_the_calculator_finishes(channel: grpc.aio.Channel) -> None:
    started = time.monotonic()
    req = tooluse_pb.ExecuteRequest(prompt="What is 17 * 23? Use the calculator.", tools=["calculator"],
                                    max_steps=TOOL_STEPS, options=greedy(32))
    result, failed = await grpc_unary(tooluse_grpc.ToolUseServiceStub(channel).Execute(req, timeout=DEADLINE_S))
    # Tool use asks for no structured output: there is no documented failure to accept.
    assert failed is None, failed
    assert result is not None
    assert_tool_run(result)
    report("tool use, gRPC", started, None, tool_summary(result))


async def test_tool_use_over_rest_sse_streams_calls_results_and_answer(rest: httpx.AsyncClient) -> None:
    started = time.monotonic()
    body = {"prompt": "Use the calculator tool to compute 12 + 30.", "tools": ["calculator"],
            "max_steps": TOOL_STEPS, "options": greedy_json(32)}
    events, failed = await rest_sse(rest, "/api/v1/tool-use/execute:stream", {"execute": body})
    assert failed is None, failed
    result = events[-1]["result"]
    assert_tool_run(result)
    assert of_kind(events, "tool_call") == result["calls"], events
    assert of_kind(events, "tool_result") == result["results"], events
    streamed = "".join(a["text"] for a in of_kind(events, "answer"))
    if not result["calls"]:  # one turn, no tools: its streamed tokens are the answer
        assert streamed == result["answer"], (streamed, result["answer"])
    else:
        assert streamed.endswith(result["answer"]), (streamed, result["answer"])
    report("tool use, REST SSE", started, None, tool_summary(result))


# ---- plan and execute ------------------------------------------------------------------------

STEP_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
PLAN_STEPS = 2


def assert_dag(plan: dict[str, Any], tools: set[str]) -> list[str]:
    """A valid plan: unique ids, known kinds and tools, dependencies on its own steps, no cycle.
    Returns the ids in an order that respects the dependencies."""
    steps = plan["steps"]
    assert 1 <= len(steps) <= PLAN_STEPS, plan
    ids = [s["id"] for s in steps]
    assert len(set(ids)) == len(ids) and all(STEP_ID.match(i) for i in ids), ids
    for s in steps:
        assert s["description"].strip(), s
        assert s["kind"] in ("STEP_KIND_MODEL", "STEP_KIND_TOOL"), s
        if s["kind"] == "STEP_KIND_TOOL":
            assert s["tool"] in tools, s
        assert all(d in ids and d != s["id"] for d in s.get("depends_on", [])), s
    order: list[str] = []
    pending = {s["id"]: set(s.get("depends_on", [])) for s in steps}
    while pending:
        ready = [i for i, deps in pending.items() if deps <= set(order)]
        assert ready, f"the plan's dependencies form a cycle: {plan}"
        order.extend(ready)
        for i in ready:
            del pending[i]
    return order


def assert_plan_run(result: dict[str, Any]) -> None:
    assert_dag(result["plan"], {"calculator"})
    assert result["model"] == SMOLLM2_MODEL and result["replans"] == 0 and result["plan"]["revision"] == 0, result
    ids = {s["id"] for s in result["plan"]["steps"]}
    # No replans were allowed, so the run only finished if every step of the one plan succeeded.
    assert sorted(s["step_id"] for s in result["steps"]) == sorted(ids), result
    assert all(s["status"] == "STEP_STATUS_SUCCEEDED" and s["plan_revision"] == 0 for s in result["steps"]), result
    assert_usage(result, 2)  # at least the planner and the synthesis


def plan_summary(result: dict[str, Any]) -> str:
    kinds = [s["kind"] for s in result["plan"]["steps"]]
    return f"plan {kinds}, answer {result['answer'][:60]!r}"


def plan_request() -> plan_pb.RunRequest:
    return plan_pb.RunRequest(goal="Add 2 and 3 with the calculator, then state the sum.", tools=["calculator"],
                              max_steps=PLAN_STEPS, max_replans=0, options=greedy(64))


async def test_plan_execute_over_grpc_stream_plans_a_dag_then_runs_it(channel: grpc.aio.Channel) -> None:
    started = time.monotonic()
    call = plan_grpc.PlanExecuteServiceStub(channel).RunStream(
        iter([plan_pb.RunStreamRequest(run=plan_request())]), timeout=DEADLINE_S)
    events, failed = await grpc_stream(call)
    if events:  # the planner answered: the plan came first, and its steps ran in dependency order
        first = events[0]["plan"]
        assert first.get("awaiting_approval", False) is False, first
        assert_dag(first["plan"], {"calculator"})
        ids = {s["id"]: set(s.get("depends_on", [])) for s in first["plan"]["steps"]}
        done: set[str] = set()
        for e in events[1:-1]:
            if "step_started" in e:
                assert ids[e["step_started"]["step_id"]] <= done, (e, done)
            elif "step_result" in e and e["step_result"]["status"] == "STEP_STATUS_SUCCEEDED":
                done.add(e["step_result"]["step_id"])
            elif "answer" in e:
                assert e["answer"].get("source", "") in {"", *ids}, e
            else:
                assert "step_result" in e, e
    if failed:
        # Either no valid plan (before any event), or a step failed with no replan left.
        assert_documented(failed, MALFORMED, REPLANS)
        if failed.reason == REPLANS:  # it names the step that failed, as streamed
            failed_steps = [r["step_id"] for r in of_kind(events, "step_result") if r["status"] == "STEP_STATUS_FAILED"]
            assert failed.metadata["step_id"] in failed_steps and failed.metadata["replans"] == "0", (failed, events)
        else:  # with no replans, only the first plan can be malformed
            assert not events, events
    else:
        result = events[-1]["result"]
        assert_plan_run(result)
        assert result["plan"] == events[0]["plan"]["plan"], events[0]
        assert of_kind(events, "step_result") == result["steps"], events
        final = "".join(a["text"] for a in of_kind(events, "answer") if not a.get("source"))
        assert final == result["answer"], (final, result["answer"])
    report("plan-execute, gRPC stream", started, failed, "" if failed else plan_summary(events[-1]["result"]))


async def test_plan_execute_over_rest_returns_the_plan_and_answer(rest: httpx.AsyncClient) -> None:
    started = time.monotonic()
    body = json_format.MessageToDict(plan_request(), preserving_proto_field_name=True)
    body["goal"] = "Say hello in French."
    result, failed = await rest_unary(rest, "/api/v1/plan-execute/run", body)
    if failed:
        assert_documented(failed, MALFORMED, REPLANS)
    else:
        assert result is not None
        assert_plan_run(result)
    report("plan-execute, REST", started, failed, "" if failed else plan_summary(result or {}))


# ---- reflection --------------------------------------------------------------------------------

THRESHOLD = 8.0  # the documented default
HAIKU_TASK = "Write a haiku about rain."
HAIKU = "Rain falls soft and slow / on the quiet garden stones / the earth drinks deeply"


def assert_reflection(result: dict[str, Any], max_rounds: int) -> None:
    """Scores on 0..10, and the stop reason, the rounds and the final draft the loop's rules give
    for those scores: stop at the threshold, or when a revision is no better than the best so far."""
    history = result["history"]
    assert [h["round"] for h in history] == list(range(1, len(history) + 1)), history
    assert result["rounds"] == len(history) and 1 <= len(history) <= max_rounds, result
    assert all(0 <= h["score"] <= 10 for h in history), history
    best: dict[str, Any] | None = None
    expected, stopped_at = "REFLECTION_STOP_REASON_MAX_ROUNDS", len(history)
    for i, h in enumerate(history, 1):
        if best is not None and h["score"] <= best["score"]:
            expected, stopped_at = "REFLECTION_STOP_REASON_NO_IMPROVEMENT", i
            break
        best = h
        if h["score"] >= THRESHOLD:
            expected, stopped_at = "REFLECTION_STOP_REASON_THRESHOLD_REACHED", i
            break
    assert best is not None
    assert result["stop_reason"] == expected and stopped_at == len(history), result
    assert (result["final_draft"], result["final_score"]) == (best["draft"], best["score"]), result
    assert_usage(result, len(history))


def reflection_summary(result: dict[str, Any]) -> str:
    return f"scores {[h['score'] for h in result['history']]}, {result['stop_reason']}"


async def test_reflection_over_grpc_stream_drafts_critiques_and_revises(channel: grpc.aio.Channel) -> None:
    started = time.monotonic()
    req = reflection_pb.ImproveRequest(task=HAIKU_TASK, max_rounds=2, options=greedy(48))
    call = reflection_grpc.ReflectionServiceStub(channel).ImproveStream(
        iter([reflection_pb.ImproveStreamRequest(improve=req)]), timeout=DEADLINE_S)
    events, failed = await grpc_stream(call)
    # Per round: the draft's tokens, the whole draft, then its critique (rounds counted from 1).
    rounds = [(k, e[k]) for e in events for k in ("draft", "critique") if k in e]
    assert [(k, r["round"]) for k, r in rounds] == [
        (("draft", "critique")[i % 2], i // 2 + 1) for i in range(len(rounds))], rounds
    assert all(0 <= r["score"] <= 10 for k, r in rounds if k == "critique"), rounds
    drafts = [r["text"] for k, r in rounds if k == "draft"]
    assert "".join(d["text"] for d in of_kind(events, "delta")) == "".join(drafts), events
    if failed:
        assert_documented(failed, MALFORMED)  # a critique that stayed malformed
        assert events and len(drafts) == len(of_kind(events, "critique")) + 1, events
    else:
        result = events[-1]["result"]
        assert_reflection(result, max_rounds=2)
        assert result["model"] == SMOLLM2_MODEL, result  # it wrote the drafts
        history = [(h["round"], h["draft"], h["score"], h["feedback"]) for h in result["history"]]
        critiques = of_kind(events, "critique")
        assert history == [(c["round"], d, c["score"], c["feedback"]) for c, d in zip(critiques, drafts, strict=True)]
    report("reflection, gRPC stream", started, failed, "" if failed else reflection_summary(events[-1]["result"]))


async def test_reflection_over_rest_critiques_the_initial_draft(rest: httpx.AsyncClient) -> None:
    started = time.monotonic()
    body = {"task": HAIKU_TASK, "initial_draft": HAIKU, "max_rounds": 1, "options": greedy_json(48)}
    result, failed = await rest_unary(rest, "/api/v1/reflection/improve", body)
    if failed:
        assert_documented(failed, MALFORMED)
    else:
        assert result is not None
        assert_reflection(result, max_rounds=1)
        assert result["history"][0]["draft"] == HAIKU, result  # round 1 scores the caller's draft as is
    report("reflection, REST", started, failed, "" if failed else reflection_summary(result or {}))


# ---- collaboration -----------------------------------------------------------------------------

AGENTS = ("alice", "bob")
MODERATOR = "moderator"  # the default judge of a debate


def assert_debate(result: dict[str, Any]) -> None:
    """Round 1: each agent once, in request order; then the moderator's verdict closes round 2."""
    assert (result["strategy"], result["rounds"]) == ("STRATEGY_DEBATE", 1), result
    transcript = result["transcript"]
    assert [(t["agent"], t["round"], t["human"]) for t in transcript] == [
        (AGENTS[0], 1, False), (AGENTS[1], 1, False), (MODERATOR, 2, False)], transcript
    verdict = json.loads(transcript[-1]["content"])
    assert verdict["winner"] in (*AGENTS, "synthesis") and verdict["answer"], verdict
    assert isinstance(verdict["reasoning"], str), verdict
    assert result["answer"] == verdict["answer"], result
    assert_usage(result, 3)


def debate_request(task: str) -> collab_pb.RunRequest:
    return collab_pb.RunRequest(task=task, strategy=collab_pb.STRATEGY_DEBATE, rounds=1,
                                agents=[collab_pb.Agent(name=n) for n in AGENTS], options=greedy(48))


def debate_summary(result: dict[str, Any]) -> str:
    verdict = json.loads(result["transcript"][-1]["content"])
    return f"winner {verdict['winner']!r}, answer {result['answer'][:60]!r}"


async def test_debate_over_grpc_stream_streams_every_turn_then_the_verdict(channel: grpc.aio.Channel) -> None:
    started = time.monotonic()
    req = debate_request("Is 7 a prime number? Answer briefly.")
    call = collab_grpc.CollaborationServiceStub(channel).RunStream(
        iter([collab_pb.RunStreamRequest(run=req)]), timeout=DEADLINE_S)
    events, failed = await grpc_stream(call)
    started_turns = [(t["agent"], t["round"]) for t in of_kind(events, "turn_started")]
    turns = of_kind(events, "turn")
    # Both debaters speak at once in round 1; their turns complete before the moderator starts.
    assert sorted(started_turns[:2]) == [(a, 1) for a in AGENTS], started_turns
    assert sorted((t["agent"], t["round"]) for t in turns[:2]) == [(a, 1) for a in AGENTS], turns
    for t in turns[:2]:
        deltas = "".join(d["text"] for d in of_kind(events, "delta") if d.get("source") == t["agent"])
        assert deltas == t["content"], (t, deltas)
    assert started_turns[2:] == [(MODERATOR, 2)], started_turns
    assert {d.get("source") for d in of_kind(events, "delta")} <= {*AGENTS, MODERATOR}, events
    if failed:
        assert_documented(failed, MALFORMED)  # the moderator's verdict stayed malformed
        assert len(turns) == 2, turns
    else:
        result = events[-1]["result"]
        assert_debate(result)
        # Streamed as each finished; the transcript keeps the request's order within a round.
        first_round = sorted(turns[:2], key=lambda t: AGENTS.index(t["agent"]))
        assert first_round + turns[2:] == result["transcript"], turns
    report("debate, gRPC stream", started, failed, "" if failed else debate_summary(events[-1]["result"]))


async def test_debate_over_rest_returns_the_transcript_and_answer(rest: httpx.AsyncClient) -> None:
    started = time.monotonic()
    body = json_format.MessageToDict(debate_request("Which is larger, 9 or 12? Answer briefly."),
                                     preserving_proto_field_name=True)
    result, failed = await rest_unary(rest, "/api/v1/collaborate/run", body)
    if failed:
        assert_documented(failed, MALFORMED)
    else:
        assert result is not None
        assert_debate(result)
    report("debate, REST", started, failed, "" if failed else debate_summary(result or {}))
