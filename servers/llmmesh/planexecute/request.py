"""A plan-and-execute request as plain values, built from the proto with every field validated,
and the plan decisions a client sends on the stream."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from llmmesh.common.model_call import MAX_MODEL_NAME, Sampling
from llmmesh.common.structs import struct_to_dict
from llmmesh.framework.bidi import BidiSession
from llmmesh.framework.errors import FailedPrecondition, FieldViolation, InvalidArgument
from llmmesh.framework.validation import Violations
from llmmesh.patterns.limits import bounded
from llmmesh.patterns.options import pattern_sampling
from llmmesh.patterns.service import Intake
from llmmesh.planexecute.plan import Plan, Step, StepKind
from llmmesh.planexecute.v1 import planexecute_service_pb2 as pb
from llmmesh.settings import PatternLimits
from llmmesh.tools.registry import ToolSet

# Steps per plan when the request names none: a few steps are what a small model plans well (and
# what most goals need); a caller may ask for up to the server's limit.
DEFAULT_PLAN_STEPS = 4
# Greedy unless the caller chooses a temperature: a plan is a structure and each step one small
# task, and a small model sampled at a server's default (llama.cpp: 0.8) writes erratic plans and
# rambles. Structured repairs vary seed and temperature; free text has the anti-repetition default
# and the loop guard, so greedy text does not loop.
DEFAULT_TEMPERATURE = 0.0
_KINDS = {pb.STEP_KIND_MODEL: StepKind.MODEL, pb.STEP_KIND_TOOL: StepKind.TOOL}


class DecisionAction(StrEnum):
    APPROVE = "approve"
    EDIT = "edit"
    REJECT = "reject"


_ACTIONS = {pb.PLAN_DECISION_ACTION_APPROVE: DecisionAction.APPROVE, pb.PLAN_DECISION_ACTION_EDIT: DecisionAction.EDIT,
            pb.PLAN_DECISION_ACTION_REJECT: DecisionAction.REJECT}


@dataclass(frozen=True)
class Decision:
    action: DecisionAction
    plan: Plan | None = None  # the edited plan, for EDIT
    comment: str = ""


# Given the plan awaiting approval, waits for the human's decision.
Approver = Callable[[Plan], Awaitable[Decision]]


@dataclass(frozen=True)
class PlanRequest:
    goal: str
    model: str
    tools: ToolSet
    max_steps: int  # steps per plan (each revision)
    max_replans: int
    require_approval: bool
    sampling: Sampling
    json_attempts: int
    human_timeout_s: float
    max_chars: int
    field_prefix: str = ""  # "run." on the stream: where the caller's fields are, for errors
    # How the run reaches the human who approves its plans (the stream); None on the unary call.
    approver: Approver | None = None

    @property
    def caller_fields(self) -> dict[str, str]:
        return {f"{self.field_prefix}goal": self.goal}


async def from_proto(msg: pb.RunRequest, intake: Intake) -> PlanRequest:
    limits, prefix = intake.limits, intake.prefix
    assert intake.tools is not None, "plan-and-execute needs the server's tools"
    v = Violations()
    v.text(msg.goal, f"{prefix}goal", required=True, max_chars=limits.max_text_chars)
    v.text(msg.model, f"{prefix}model", max_chars=MAX_MODEL_NAME)
    tools = await intake.tools.select(list(msg.tools), f"{prefix}tools", v)
    max_steps = bounded(msg.max_steps if msg.HasField("max_steps") else None, f"{prefix}max_steps",
                        default=min(DEFAULT_PLAN_STEPS, limits.max_plan_steps), maximum=limits.max_plan_steps, v=v)
    max_replans = bounded(msg.max_replans if msg.HasField("max_replans") else None, f"{prefix}max_replans",
                          default=limits.max_replans, maximum=limits.max_replans, minimum=0, v=v)
    v.check(intake.streaming or not msg.require_approval, f"{prefix}require_approval",
            "approval needs the RunStream method: the plan is sent on the stream and the decision read from it")
    sampling = pattern_sampling(msg.options, f"{prefix}options", limits, v)
    if sampling.temperature is None:
        sampling = dataclasses.replace(sampling, temperature=DEFAULT_TEMPERATURE)
    v.raise_if_any()
    approver = _approver(intake.session, limits) if intake.session is not None else None
    return PlanRequest(msg.goal, msg.model, tools, max_steps, max_replans, msg.require_approval, sampling,
                       limits.json_attempts, limits.human_timeout_s, limits.max_text_chars, prefix, approver)


def _approver(session: BidiSession[Any], limits: PatternLimits) -> Approver:
    """Each decision is the next message on the stream."""

    async def approve(plan: Plan) -> Decision:
        msg = await session.next()
        if msg is None:
            raise FailedPrecondition("the client closed its side of the stream before deciding on the plan")
        return decision(msg, limits)

    return approve


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
