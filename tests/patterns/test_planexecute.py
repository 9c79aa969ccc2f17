"""Plan-and-execute against a real server and scripted simulators: concurrent DAG execution,
replanning after a failed step, malformed plans, human approval over the stream (approve, edit,
reject, timeout) and request validation."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from google.rpc import code_pb2
from grpc_status import rpc_status

from llmmesh.common.v1 import common_pb2
from llmmesh.planexecute.v1 import planexecute_service_pb2 as pb
from llmmesh.planexecute.v1 import planexecute_service_pb2_grpc as pb_grpc
from llmmesh.simulator.config import ScriptRule
from tests.support.rpc import drain, error_info, violations
from tests.support.sims import eventually, sim, stats

SERVICES = ("inference", "planexecute")
# Markers of the prompts (see llmmesh.planexecute.prompts); rules are tried in this order.
SYNTHESIS = "Write the final answer to the goal"
REPLAN = "These steps failed and have no results"
PLANNER = "You are the planner"


def step(id: str, description: str, *, tool: str = "", arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    """A step as the planner writes it: dependencies are the `{id}` references it makes."""
    out: dict[str, Any] = {"id": id, "description": description, "kind": "tool" if tool else "model"}
    if tool:
        out.update(tool=tool, arguments=arguments or {})
    return out


def plan(*steps: dict[str, Any]) -> str:
    return json.dumps({"steps": list(steps)})


def run_request(**overrides: Any) -> pb.RunRequest:
    return pb.RunRequest(**{"goal": "GOAL-X", "model": "m", **overrides})


def start(**overrides: Any) -> pb.RunStreamRequest:
    return pb.RunStreamRequest(run=run_request(**overrides))


def label(e: pb.RunStreamResponse) -> str:
    kind = e.WhichOneof("event")
    if kind == "step_started":
        return f"started:{e.step_started.step_id}"
    if kind == "step_result":
        return f"result:{e.step_result.step_id}"
    if kind == "answer":
        return f"token:{e.answer.source}"
    return kind


def labels(events: list[pb.RunStreamResponse]) -> list[str]:
    out: list[str] = []
    for e in events:
        if not out or out[-1] != label(e):
            out.append(label(e))
    return out


# ---- execution --------------------------------------------------------------------------------

DIAMOND = plan(step("s1", "Find ALPHA"), step("s2", "Find BETA"), step("s3", "Combine {s1} and {s2}"))


async def test_independent_steps_run_concurrently_and_the_dependent_one_after_both(inference_mesh) -> None:
    rules = (ScriptRule(match=SYNTHESIS, response="FINAL"),
             ScriptRule(match=PLANNER, response=DIAMOND),
             # Both slow, so they are in flight together if and only if they were started together.
             ScriptRule(match="Find ALPHA", response="ALPHA", fault="delay_ms=300"),
             ScriptRule(match="Find BETA", response="BETA", fault="delay_ms=300"),
             # Matches only if s3's description got the results of s1 and s2 substituted.
             ScriptRule(match="Combine ALPHA and BETA", response="COMBINED"))
    async with inference_mesh(sim(*rules), services=SERVICES) as m:
        events, err = await drain(pb_grpc.PlanExecuteServiceStub(m.channel).RunStream(iter([start()]), timeout=30))
        peak = (await stats(m.sims[0]))["peak_in_flight_generations"]
    assert err is None
    order = labels(events)
    assert order[0] == "plan" and not events[0].plan.awaiting_approval
    assert order[1:3] == ["started:s1", "started:s2"]  # both before either finished
    first_c = order.index("started:s3")
    assert order.index("result:s1") < first_c and order.index("result:s2") < first_c
    assert order[-2:] == ["token:", "result"]
    assert peak >= 2
    result = events[-1].result
    assert [(s.step_id, s.status, s.output.strip()) for s in result.steps if s.step_id == "s3"] == [
        ("s3", pb.STEP_STATUS_SUCCEEDED, "COMBINED")]
    assert {s.step_id: s.output.strip() for s in result.steps} == {"s1": "ALPHA", "s2": "BETA", "s3": "COMBINED"}
    # The dependencies are the references the planner wrote.
    assert [list(s.depends_on) for s in result.plan.steps] == [[], [], ["s1", "s2"]]
    assert result.answer.strip() == "FINAL" and result.replans == 0 and result.plan.revision == 0
    assert result.usage.model_calls == 5  # planner, three steps, synthesis
    # Model step tokens are tagged with their step; the answer's tokens are untagged.
    assert "".join(e.answer.text for e in events if label(e) == "token:s3").strip() == "COMBINED"
    assert "".join(e.answer.text for e in events if label(e) == "token:") == result.answer


REPLAN_RULES = (
    ScriptRule(match=SYNTHESIS, response="The answer is 42."),
    ScriptRule(match=REPLAN, response=plan(step("s3", "Multiply", tool="calculator",
                                                arguments={"expression": "{s1}*6"}))),
    # A plan that is valid but fails when it runs: the calculator refuses a division by zero.
    ScriptRule(match=PLANNER, response=plan(step("s1", "Name the number seven as a digit"),
                                            step("s2", "Compute", tool="calculator",
                                                 arguments={"expression": "{s1}/0"}))),
    ScriptRule(match="Name the number seven", response="7"),
)


async def test_a_failed_step_triggers_a_replan_that_keeps_completed_results(inference_mesh) -> None:
    async with inference_mesh(sim(*REPLAN_RULES), services=SERVICES) as m:
        events, err = await drain(pb_grpc.PlanExecuteServiceStub(m.channel).RunStream(iter([start()]), timeout=30))
    assert err is None
    plans = [e.plan.plan for e in events if e.HasField("plan")]
    # The replan's step gets an id no step of the run has had.
    assert [(p.revision, [s.id for s in p.steps]) for p in plans] == [(0, ["s1", "s2"]), (1, ["s3"])]
    result = events[-1].result
    steps = [(s.step_id, s.status, s.plan_revision) for s in result.steps]
    assert steps == [("s1", pb.STEP_STATUS_SUCCEEDED, 0), ("s2", pb.STEP_STATUS_FAILED, 0),
                     ("s3", pb.STEP_STATUS_SUCCEEDED, 1)]
    failed = result.steps[1]
    assert failed.error.code == code_pb2.INVALID_ARGUMENT and "division by zero" in failed.error.message
    # s3 depends on s1, completed under revision 0, and got its output substituted: 7*6.
    assert result.steps[2].output == "42"
    assert (result.replans, result.plan.revision, result.answer.strip()) == (1, 1, "The answer is 42.")


async def test_a_failure_with_no_replans_left_aborts_the_run(inference_mesh) -> None:
    async with inference_mesh(sim(*REPLAN_RULES), services=SERVICES) as m:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await pb_grpc.PlanExecuteServiceStub(m.channel).Run(run_request(max_replans=0), timeout=30)
    assert err.value.code() == grpc.StatusCode.ABORTED
    assert "'s2' failed (INVALID_ARGUMENT" in err.value.details()
    assert error_info(rpc_status.from_call(err.value)).reason == "REPLANS_EXHAUSTED"


async def test_an_invalid_plan_is_malformed_output_shown_to_the_planner_and_repaired(inference_mesh) -> None:
    forward = plan(step("s1", "first, using {s2}"), step("s2", "second"))
    rules = (ScriptRule(match=SYNTHESIS, response="ok"),
             ScriptRule(match="That reply was not valid: step s1 inserts {s2}, which is not a step before it",
                        target="last", response=plan(step("s1", "only step"))),
             ScriptRule(match=PLANNER, response=forward),
             ScriptRule(match="only step", response="done"))
    async with inference_mesh(sim(*rules), services=SERVICES) as m:
        resp = await pb_grpc.PlanExecuteServiceStub(m.channel).Run(run_request(), timeout=30)
    assert [s.id for s in resp.plan.steps] == ["s1"] and resp.answer.strip() == "ok"
    assert resp.usage.model_calls == 4  # two planner attempts, the step, the synthesis


async def test_a_persistently_invalid_plan_fails_as_malformed_output(inference_mesh) -> None:
    rules = (ScriptRule(match=PLANNER, response=plan(step("s1", "x {s9}"))),)
    async with inference_mesh(sim(*rules), services=SERVICES, limits={"json_attempts": 2}) as m:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await pb_grpc.PlanExecuteServiceStub(m.channel).Run(run_request(), timeout=30)
        recent = (await stats(m.sims[0]))["recent"]
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert error_info(rpc_status.from_call(err.value)).reason == "MALFORMED_MODEL_OUTPUT"
    assert "step s1 inserts {s9}, which is not a step before it" in err.value.details()
    assert "model 'm'" in err.value.details()  # the model that answered
    assert len(recent) == 2  # exactly the allowed attempts, and no step ran


# ---- human in the loop ------------------------------------------------------------------------

APPROVAL_RULES = (ScriptRule(match=SYNTHESIS, response="approved answer"),
                  ScriptRule(match=PLANNER, response=plan(step("s1", "Proposed work"))),
                  ScriptRule(match="Proposed work", response="P1 DONE"),
                  ScriptRule(match="Edited first", response="E1 DONE"),
                  # Matches only if e2's description got e1's result substituted.
                  ScriptRule(match="Edited second using E1 DONE", response="E2 DONE"))


class Conversation:
    """A RunStream whose client messages are sent as the test decides."""

    def __init__(self, stub: pb_grpc.PlanExecuteServiceStub, first: pb.RunStreamRequest) -> None:
        self._outbox: asyncio.Queue[pb.RunStreamRequest | None] = asyncio.Queue()
        self._outbox.put_nowait(first)
        self.call = stub.RunStream(self._requests(), timeout=30)

    async def _requests(self) -> AsyncIterator[pb.RunStreamRequest]:
        while (msg := await self._outbox.get()) is not None:
            yield msg

    def send(self, msg: pb.RunStreamRequest | None) -> None:
        self._outbox.put_nowait(msg)

    async def until_plan(self) -> pb.RunStreamResponse:
        event = await self.call.read()
        assert event.HasField("plan"), event
        return event

    async def rest(self) -> tuple[list[pb.RunStreamResponse], grpc.aio.AioRpcError | None]:
        events = []
        try:
            while (event := await self.call.read()) is not grpc.aio.EOF:
                events.append(event)
        except grpc.aio.AioRpcError as err:
            return events, err
        finally:
            self.send(None)
        return events, None


def decision(action: int, edited: pb.Plan | None = None, comment: str = "") -> pb.RunStreamRequest:
    return pb.RunStreamRequest(decision=pb.PlanDecision(action=action, edited_plan=edited, comment=comment))


async def test_approve_runs_the_proposed_plan(inference_mesh) -> None:
    async with inference_mesh(sim(*APPROVAL_RULES), services=SERVICES) as m:
        talk = Conversation(pb_grpc.PlanExecuteServiceStub(m.channel), start(require_approval=True))
        proposed = await talk.until_plan()
        assert proposed.plan.awaiting_approval and [s.id for s in proposed.plan.plan.steps] == ["s1"]
        talk.send(decision(pb.PLAN_DECISION_ACTION_APPROVE))
        events, err = await talk.rest()
    assert err is None
    assert labels(events) == ["started:s1", "token:s1", "result:s1", "token:", "result"]
    assert events[-1].result.answer.strip() == "approved answer"


async def test_edit_runs_the_edited_plan_instead(inference_mesh) -> None:
    edited = pb.Plan(steps=[
        pb.PlanStep(id="e1", description="Edited first", kind=pb.STEP_KIND_MODEL),
        pb.PlanStep(id="e2", description="Edited second using {e1}", kind=pb.STEP_KIND_MODEL, depends_on=["e1"]),
        pb.PlanStep(id="e3", description="Check", kind=pb.STEP_KIND_TOOL, tool="calculator",
                    arguments=json_format.ParseDict({"expression": "3*3"}, pb.PlanStep().arguments),
                    depends_on=["e2"])])
    async with inference_mesh(sim(*APPROVAL_RULES), services=SERVICES) as m:
        talk = Conversation(pb_grpc.PlanExecuteServiceStub(m.channel), start(require_approval=True))
        await talk.until_plan()
        talk.send(decision(pb.PLAN_DECISION_ACTION_EDIT, edited))
        events, err = await talk.rest()
    assert err is None
    assert events[0].HasField("plan") and not events[0].plan.awaiting_approval
    assert [s.id for s in events[0].plan.plan.steps] == ["e1", "e2", "e3"]
    started = [e.step_started.step_id for e in events if e.HasField("step_started")]
    assert started == ["e1", "e2", "e3"]  # s1, the proposal, never ran
    result = events[-1].result
    assert [(s.step_id, s.output.strip()) for s in result.steps] == [("e1", "E1 DONE"), ("e2", "E2 DONE"),
                                                                      ("e3", "9")]
    assert [s.id for s in result.plan.steps] == ["e1", "e2", "e3"]


async def test_an_invalid_edit_is_invalid_argument_with_field_paths(inference_mesh) -> None:
    edited = pb.Plan(steps=[
        pb.PlanStep(id="e1", description="no kind"),
        pb.PlanStep(id="e2", description="bad dependency", kind=pb.STEP_KIND_MODEL, depends_on=["e1", "nope"]),
        pb.PlanStep(id="e3", description="bad tool", kind=pb.STEP_KIND_TOOL, tool="rm")])
    async with inference_mesh(sim(*APPROVAL_RULES), services=SERVICES) as m:
        talk = Conversation(pb_grpc.PlanExecuteServiceStub(m.channel), start(require_approval=True))
        await talk.until_plan()
        talk.send(decision(pb.PLAN_DECISION_ACTION_EDIT, edited))
        events, err = await talk.rest()
    assert err is not None and err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(err)) == {"decision.edited_plan.steps[0].kind", "decision.edited_plan.steps[1].depends_on[1]",
                                    "decision.edited_plan.steps[2].tool"}
    assert [e.WhichOneof("event") for e in events] == ["error"]


async def test_reject_ends_the_run_aborted(inference_mesh) -> None:
    async with inference_mesh(sim(*APPROVAL_RULES), services=SERVICES) as m:
        talk = Conversation(pb_grpc.PlanExecuteServiceStub(m.channel), start(require_approval=True))
        await talk.until_plan()
        talk.send(decision(pb.PLAN_DECISION_ACTION_REJECT, comment="too risky"))
        events, err = await talk.rest()
        calls = (await stats(m.sims[0]))["completed"]
    assert err is not None and err.code() == grpc.StatusCode.ABORTED and "too risky" in err.details()
    assert [e.WhichOneof("event") for e in events] == ["error"]
    assert events[0].error.code == code_pb2.ABORTED and error_info(events[0].error).reason == "PLAN_REJECTED"
    assert calls == 1  # only the planner ran


async def test_no_decision_in_time_is_deadline_exceeded_and_nothing_runs(inference_mesh) -> None:
    async with inference_mesh(sim(*APPROVAL_RULES), services=SERVICES, limits={"human_timeout_s": 0.3}) as m:
        talk = Conversation(pb_grpc.PlanExecuteServiceStub(m.channel), start(require_approval=True))
        await talk.until_plan()
        events, err = await talk.rest()
        calls = (await stats(m.sims[0]))["completed"]
    assert err is not None and err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert [e.WhichOneof("event") for e in events] == ["error"] and calls == 1


async def test_approval_needs_the_stream_and_requests_are_validated(inference_mesh) -> None:
    async with inference_mesh(sim(), services=SERVICES, limits={"max_replans": 2}) as m:
        stub = pb_grpc.PlanExecuteServiceStub(m.channel)
        with pytest.raises(grpc.aio.AioRpcError) as unary:
            await stub.Run(run_request(require_approval=True), timeout=30)
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await stub.Run(run_request(goal=" ", tools=["calculator", "nope"], max_replans=3, max_steps=0),
                           timeout=30)
        events, stream_err = await drain(stub.RunStream(iter([start(tools=["nope"])]), timeout=30))
    assert unary.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(unary.value)) == {"require_approval"}
    assert set(violations(bad.value)) == {"goal", "tools[1]", "max_replans", "max_steps"}
    assert stream_err is not None and set(violations(stream_err)) == {"run.tools[0]"}
    assert events == []  # refused before any event: the status alone says so


async def test_cancel_stops_every_running_step(inference_mesh) -> None:
    rules = (ScriptRule(match=PLANNER, response=DIAMOND),
             ScriptRule(match="Find ", response="never", fault="hang"))
    async with inference_mesh(sim(*rules), services=SERVICES) as m:
        talk = Conversation(pb_grpc.PlanExecuteServiceStub(m.channel), start())
        await talk.until_plan()

        async def both_generating() -> bool:
            return (await stats(m.sims[0]))["in_flight_generations"] == 2
        await eventually(both_generating, timeout_s=20)
        talk.send(pb.RunStreamRequest(cancel=common_pb2.Cancel(reason="changed my mind")))
        events, err = await talk.rest()

        async def both_cancelled() -> dict[str, Any] | None:
            s = await stats(m.sims[0])
            return s if s["cancelled"] == 2 and s["in_flight"] == 0 else None
        final = await eventually(both_cancelled, timeout_s=20)
    assert err is not None and err.code() == grpc.StatusCode.CANCELLED and "changed my mind" in err.details()
    assert labels(events) == ["started:s1", "started:s2", "error"]
    assert final["completed"] == 1  # the planner; neither step finished, c never started
