"""Plan-and-execute results and events → protobuf."""

from __future__ import annotations

from llmmesh.common.structs import dict_to_struct
from llmmesh.common.v1 import common_pb2
from llmmesh.planexecute import events
from llmmesh.planexecute.plan import Plan, StepKind
from llmmesh.planexecute.v1 import planexecute_service_pb2 as pb
from llmmesh.tools.status import failure_status

_KIND_ENUM = {StepKind.MODEL: pb.STEP_KIND_MODEL, StepKind.TOOL: pb.STEP_KIND_TOOL}
_STATUS = {events.StepStatus.SUCCEEDED: pb.STEP_STATUS_SUCCEEDED, events.StepStatus.FAILED: pb.STEP_STATUS_FAILED,
           events.StepStatus.SKIPPED: pb.STEP_STATUS_SKIPPED}


def plan_message(plan: Plan) -> pb.Plan:
    return pb.Plan(revision=plan.revision, steps=[
        pb.PlanStep(id=s.id, description=s.description, kind=_KIND_ENUM.get(s.kind, pb.STEP_KIND_UNSPECIFIED),
                    tool=s.tool, arguments=dict_to_struct(dict(s.arguments)),
                    depends_on=list(s.depends_on))
        for s in plan.steps])


def step_result(o: events.StepOutcome) -> pb.StepResult:
    out = pb.StepResult(step_id=o.step_id, status=_STATUS[o.status], output=o.output, duration_ms=o.duration_ms,
                        plan_revision=o.revision)
    if o.error is not None:
        out.error.CopyFrom(failure_status(o.error))
    return out


def response(r: events.PlanResult) -> pb.RunResponse:
    return pb.RunResponse(answer=r.answer, plan=plan_message(r.plan), steps=[step_result(o) for o in r.steps],
                          replans=r.replans, model=r.model, usage=r.usage.to_proto())


def stream_event(ev: events.PlanEvent) -> pb.RunStreamResponse:
    if isinstance(ev, events.PlanProposed):
        return pb.RunStreamResponse(plan=pb.PlanProposed(plan=plan_message(ev.plan),
                                                         awaiting_approval=ev.awaiting_approval))
    if isinstance(ev, events.StepStarted):
        return pb.RunStreamResponse(step_started=pb.StepStarted(step_id=ev.step_id, plan_revision=ev.revision))
    if isinstance(ev, events.StepFinished):
        return pb.RunStreamResponse(step_result=step_result(ev.outcome))
    if isinstance(ev, events.AnswerToken):
        return pb.RunStreamResponse(answer=common_pb2.TokenDelta(text=ev.text, source=ev.source))
    return pb.RunStreamResponse(result=response(ev))
