"""Tool-use results and events → protobuf."""

from __future__ import annotations

from llmmesh.common.structs import dict_to_struct
from llmmesh.common.v1 import common_pb2
from llmmesh.tools.base import Tool, ToolOutcome
from llmmesh.tools.status import failure_status
from llmmesh.tooluse import events
from llmmesh.tooluse.v1 import tooluse_service_pb2 as pb

_STOP = {events.StopReason.ANSWERED: pb.STOP_REASON_ANSWERED, events.StopReason.MAX_STEPS: pb.STOP_REASON_MAX_STEPS}
_CALLING = {events.ToolCalling.NATIVE: pb.TOOL_CALLING_NATIVE, events.ToolCalling.PROMPTED: pb.TOOL_CALLING_PROMPTED}


def tool_spec(tool: Tool) -> pb.ToolSpec:
    return pb.ToolSpec(name=tool.name, description=tool.description,
                       parameters=dict_to_struct(tool.parameters), source=tool.source)


def invocation(inv: events.Invocation) -> pb.ToolInvocation:
    return pb.ToolInvocation(call_id=inv.call_id, name=inv.name,
                             arguments=dict_to_struct(inv.arguments), step=inv.step)


def tool_result(o: ToolOutcome) -> pb.ToolResult:
    out = pb.ToolResult(call_id=o.call_id, name=o.name, output=o.output, truncated=o.truncated,
                        duration_ms=o.duration_ms)
    if o.error is not None:
        out.error.CopyFrom(failure_status(o.error))
    return out


def response(r: events.ToolUseResult) -> pb.ExecuteResponse:
    return pb.ExecuteResponse(answer=r.answer, calls=[invocation(c) for c in r.calls],
                              results=[tool_result(o) for o in r.results], steps=r.steps,
                              stop_reason=_STOP[r.stop_reason], model=r.model, usage=r.usage.to_proto(),
                              tool_calling=_CALLING[r.tool_calling])


def stream_event(ev: events.ToolUseEvent) -> pb.ExecuteStreamResponse:
    if isinstance(ev, events.ToolCalled):
        return pb.ExecuteStreamResponse(tool_call=invocation(ev.invocation))
    if isinstance(ev, events.ToolReturned):
        return pb.ExecuteStreamResponse(tool_result=tool_result(ev.outcome))
    if isinstance(ev, events.AnswerToken):
        return pb.ExecuteStreamResponse(answer=common_pb2.TokenDelta(text=ev.text))
    return pb.ExecuteStreamResponse(result=response(ev))

