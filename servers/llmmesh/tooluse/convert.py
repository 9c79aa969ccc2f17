"""Tool-use protobuf ⇄ plain values, with every request field validated (paths like `tools[1]`)."""

from __future__ import annotations

from llmmesh.common.structs import dict_to_struct
from llmmesh.common.v1 import common_pb2
from llmmesh.framework.validation import Violations
from llmmesh.patterns.limits import bounded
from llmmesh.patterns.options import pattern_sampling
from llmmesh.settings import PatternLimits
from llmmesh.tools.base import Tool, ToolOutcome
from llmmesh.tools.registry import ToolRegistry
from llmmesh.tools.status import failure_status
from llmmesh.tooluse.events import (
    AnswerToken,
    Finished,
    Invocation,
    StopReason,
    ToolCalled,
    ToolCalling,
    ToolChoice,
    ToolReturned,
    ToolUseEvent,
    ToolUseResult,
)
from llmmesh.tooluse.loop import ToolUseRun
from llmmesh.tooluse.v1 import tooluse_service_pb2 as pb

MAX_MODEL_CHARS = 256
_STOP = {StopReason.ANSWERED: pb.STOP_REASON_ANSWERED, StopReason.MAX_STEPS: pb.STOP_REASON_MAX_STEPS}
_CHOICE = {pb.TOOL_CHOICE_UNSPECIFIED: ToolChoice.DEFAULT, pb.TOOL_CHOICE_AUTO: ToolChoice.AUTO,
           pb.TOOL_CHOICE_REQUIRED: ToolChoice.REQUIRED}
_CALLING = {ToolCalling.NATIVE: pb.TOOL_CALLING_NATIVE, ToolCalling.PROMPTED: pb.TOOL_CALLING_PROMPTED}


async def tool_use_run(req: pb.ExecuteRequest, registry: ToolRegistry, limits: PatternLimits,
                       prefix: str = "") -> ToolUseRun:
    v = Violations()
    v.text(req.prompt, f"{prefix}prompt", required=True, max_chars=limits.max_text_chars)
    v.text(req.system, f"{prefix}system", max_chars=limits.max_text_chars)
    v.text(req.model, f"{prefix}model", max_chars=MAX_MODEL_CHARS)
    tools = await registry.select(list(req.tools), f"{prefix}tools", v)
    max_steps = bounded(req.max_steps if req.HasField("max_steps") else None, f"{prefix}max_steps",
                        default=limits.max_steps, maximum=limits.max_steps, v=v)
    sampling = pattern_sampling(req.options, f"{prefix}options", limits, v)
    v.check(req.tool_choice in _CHOICE, f"{prefix}tool_choice", "unknown tool choice")
    v.raise_if_any()
    return ToolUseRun(req.prompt, req.system, req.model, tools, max_steps, sampling,
                      _CHOICE.get(req.tool_choice, ToolChoice.DEFAULT), prefix)


def tool_spec(tool: Tool) -> pb.ToolSpec:
    return pb.ToolSpec(name=tool.name, description=tool.description,
                       parameters=dict_to_struct(tool.parameters), source=tool.source)


def invocation(inv: Invocation) -> pb.ToolInvocation:
    return pb.ToolInvocation(call_id=inv.call_id, name=inv.name,
                             arguments=dict_to_struct(inv.arguments), step=inv.step)


def tool_result(o: ToolOutcome) -> pb.ToolResult:
    out = pb.ToolResult(call_id=o.call_id, name=o.name, output=o.output, truncated=o.truncated,
                        duration_ms=o.duration_ms)
    if o.error is not None:
        out.error.CopyFrom(failure_status(o.error))
    return out


def response(r: ToolUseResult) -> pb.ExecuteResponse:
    return pb.ExecuteResponse(answer=r.answer, calls=[invocation(c) for c in r.calls],
                              results=[tool_result(o) for o in r.results], steps=r.steps,
                              stop_reason=_STOP[r.stop_reason], model=r.model, usage=r.usage.to_proto(),
                              tool_calling=_CALLING[r.tool_calling])


def stream_event(ev: ToolUseEvent) -> pb.ExecuteStreamResponse:
    if isinstance(ev, ToolCalled):
        return pb.ExecuteStreamResponse(tool_call=invocation(ev.invocation))
    if isinstance(ev, ToolReturned):
        return pb.ExecuteStreamResponse(tool_result=tool_result(ev.outcome))
    if isinstance(ev, AnswerToken):
        return pb.ExecuteStreamResponse(answer=common_pb2.TokenDelta(text=ev.text))
    assert isinstance(ev, Finished)
    return pb.ExecuteStreamResponse(result=response(ev.result))

