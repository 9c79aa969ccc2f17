"""Plan-execute protobuf ⇄ plain values, with every request field validated."""

from __future__ import annotations

import dataclasses

from llmmesh.common.structs import dict_to_struct, struct_to_dict
from llmmesh.common.v1 import common_pb2
from llmmesh.framework.errors import FieldViolation, InvalidArgument
from llmmesh.framework.validation import Violations
from llmmesh.patterns.limits import bounded
from llmmesh.patterns.options import pattern_sampling
from llmmesh.planexecute.events import (
    AnswerToken,
    Finished,
    PlanEvent,
    PlanProposed,
    PlanResult,
    StepFinished,
    StepOutcome,
    StepStarted,
    StepStatus,
)
from llmmesh.planexecute.plan import Plan, Step, StepKind
from llmmesh.planexecute.run import Decision, DecisionAction, PlanRun
from llmmesh.planexecute.v1 import planexecute_service_pb2 as pb
from llmmesh.settings import PatternLimits
from llmmesh.tools.registry import ToolRegistry
from llmmesh.tools.status import failure_status

MAX_MODEL_CHARS = 256
# Steps per plan when the request names none: a few steps are what a small model plans well (and
# what most goals need); a caller may ask for up to the server's limit.
DEFAULT_PLAN_STEPS = 4
# Greedy unless the caller chooses a temperature: a plan is a structure and each step one small
# task, and a small model sampled at a server's default (llama.cpp: 0.8) writes erratic plans and
# rambles. Structured repairs vary seed and temperature; free text has the anti-repetition default
# and the loop guard, so greedy text does not loop.
DEFAULT_TEMPERATURE = 0.0
_KINDS = {pb.STEP_KIND_MODEL: StepKind.MODEL, pb.STEP_KIND_TOOL: StepKind.TOOL}
_KIND_ENUM = {v: k for k, v in _KINDS.items()}
_STATUS = {StepStatus.SUCCEEDED: pb.STEP_STATUS_SUCCEEDED, StepStatus.FAILED: pb.STEP_STATUS_FAILED,
           StepStatus.SKIPPED: pb.STEP_STATUS_SKIPPED}
_ACTIONS = {pb.PLAN_DECISION_ACTION_APPROVE: DecisionAction.APPROVE, pb.PLAN_DECISION_ACTION_EDIT: DecisionAction.EDIT,
            pb.PLAN_DECISION_ACTION_REJECT: DecisionAction.REJECT}


async def plan_run(req: pb.RunRequest, registry: ToolRegistry, limits: PatternLimits, *, streaming: bool,
                   prefix: str = "") -> PlanRun:
    v = Violations()
    v.text(req.goal, f"{prefix}goal", required=True, max_chars=limits.max_text_chars)
    v.text(req.model, f"{prefix}model", max_chars=MAX_MODEL_CHARS)
    tools = await registry.select(list(req.tools), f"{prefix}tools", v)
    max_steps = bounded(req.max_steps if req.HasField("max_steps") else None, f"{prefix}max_steps",
                        default=min(DEFAULT_PLAN_STEPS, limits.max_plan_steps), maximum=limits.max_plan_steps, v=v)
    max_replans = bounded(req.max_replans if req.HasField("max_replans") else None, f"{prefix}max_replans",
                          default=limits.max_replans, maximum=limits.max_replans, minimum=0, v=v)
    v.check(streaming or not req.require_approval, f"{prefix}require_approval",
            "approval needs the RunStream method: the plan is sent on the stream and the decision read from it")
    sampling = pattern_sampling(req.options, f"{prefix}options", limits, v)
    if sampling.temperature is None:
        sampling = dataclasses.replace(sampling, temperature=DEFAULT_TEMPERATURE)
    v.raise_if_any()
    return PlanRun(req.goal, req.model, tools, max_steps, max_replans, req.require_approval, sampling,
                   limits.json_attempts, limits.human_timeout_s, limits.max_text_chars, prefix)


def decision(msg: pb.RunStreamRequest, limits: PatternLimits) -> Decision:
    """The decision a client sent while a plan awaits approval; the edited plan's DAG is checked by
    the run (it needs the run's tools and completed steps), everything else here."""
    if msg.WhichOneof("action") != "decision":
        raise InvalidArgument([FieldViolation(msg.WhichOneof("action") or "action",
                                              "a plan awaits approval: send a decision (or cancel)")])
    d = msg.decision
    v = Violations()
    action = _ACTIONS.get(d.action)
    v.check(action is not None, "decision.action",
            "must be PLAN_DECISION_ACTION_APPROVE, PLAN_DECISION_ACTION_EDIT or PLAN_DECISION_ACTION_REJECT")
    v.check(d.HasField("edited_plan") == (action is DecisionAction.EDIT), "decision.edited_plan",
            "is required with PLAN_DECISION_ACTION_EDIT and only allowed with it")
    v.text(d.comment, "decision.comment", max_chars=limits.max_text_chars)
    v.raise_if_any()
    assert action is not None
    return Decision(action, plan_of(d.edited_plan) if action is DecisionAction.EDIT else None, d.comment)


def plan_of(p: pb.Plan) -> Plan:
    return Plan(tuple(Step(s.id, s.description, _KINDS.get(s.kind), s.tool,
                           struct_to_dict(s.arguments, f"decision.edited_plan.steps[{i}].arguments"),
                           tuple(s.depends_on)) for i, s in enumerate(p.steps)),
                p.revision)


def plan_message(plan: Plan) -> pb.Plan:
    return pb.Plan(revision=plan.revision, steps=[
        pb.PlanStep(id=s.id, description=s.description, kind=_KIND_ENUM.get(s.kind, pb.STEP_KIND_UNSPECIFIED),
                    tool=s.tool, arguments=dict_to_struct(dict(s.arguments)),
                    depends_on=list(s.depends_on))
        for s in plan.steps])


def step_result(o: StepOutcome) -> pb.StepResult:
    out = pb.StepResult(step_id=o.step_id, status=_STATUS[o.status], output=o.output, duration_ms=o.duration_ms,
                        plan_revision=o.revision)
    if o.error is not None:
        out.error.CopyFrom(failure_status(o.error))
    return out


def response(r: PlanResult) -> pb.RunResponse:
    return pb.RunResponse(answer=r.answer, plan=plan_message(r.plan), steps=[step_result(o) for o in r.steps],
                          replans=r.replans, model=r.model, usage=r.usage.to_proto())


def stream_event(ev: PlanEvent) -> pb.RunStreamResponse:
    if isinstance(ev, PlanProposed):
        return pb.RunStreamResponse(plan=pb.PlanProposed(plan=plan_message(ev.plan),
                                                         awaiting_approval=ev.awaiting_approval))
    if isinstance(ev, StepStarted):
        return pb.RunStreamResponse(step_started=pb.StepStarted(step_id=ev.step_id, plan_revision=ev.revision))
    if isinstance(ev, StepFinished):
        return pb.RunStreamResponse(step_result=step_result(ev.outcome))
    if isinstance(ev, AnswerToken):
        return pb.RunStreamResponse(answer=common_pb2.TokenDelta(text=ev.text, source=ev.source))
    assert isinstance(ev, Finished)
    return pb.RunStreamResponse(result=response(ev.result))
