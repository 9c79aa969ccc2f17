"""gRPC face of tool use: Execute and ExecuteStream (the shared pattern faces), and ListTools."""

from __future__ import annotations

from typing import Any

from llmmesh.patterns.service import Pattern, PatternServicer, ToolPatternServicer
from llmmesh.tooluse import convert, request
from llmmesh.tooluse.events import ToolUseResult
from llmmesh.tooluse.run import run
from llmmesh.tooluse.v1 import tooluse_service_pb2 as pb
from llmmesh.tooluse.v1 import tooluse_service_pb2_grpc as pb_grpc


class ToolUseServicer(ToolPatternServicer, pb_grpc.ToolUseServiceServicer):
    pattern = Pattern(start="execute", request=request.from_proto, run=run, result=ToolUseResult,
                      response=convert.response, stream_event=convert.stream_event)
    Execute = PatternServicer.unary
    ExecuteStream = PatternServicer.stream

    async def ListTools(self, request: pb.ListToolsRequest, context: Any) -> pb.ListToolsResponse:
        return pb.ListToolsResponse(tools=[convert.tool_spec(t) for t in (await self.tools.tools()).values()])


build = ToolUseServicer.build
