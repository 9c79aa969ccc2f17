"""gRPC face of tool use: translates messages, nothing else (logic: llmmesh.tooluse.loop)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from llmmesh.framework.bidi import BidiSession
from llmmesh.framework.services import ServiceDeps
from llmmesh.patterns.model_client import ModelClient
from llmmesh.patterns.servicer_base import PatternServicer
from llmmesh.patterns.streams import run_bidi
from llmmesh.settings import PatternLimits
from llmmesh.tools.registry import ToolRegistry
from llmmesh.tooluse import convert, loop
from llmmesh.tooluse.events import Finished
from llmmesh.tooluse.v1 import tooluse_service_pb2 as pb
from llmmesh.tooluse.v1 import tooluse_service_pb2_grpc as pb_grpc


class ToolUseServicer(PatternServicer, pb_grpc.ToolUseServiceServicer):
    def __init__(self, client: ModelClient, limits: PatternLimits) -> None:
        super().__init__(client, limits)
        self.registry = ToolRegistry(limits)

    async def close(self) -> None:
        await super().close()
        await self.registry.close()

    async def Execute(self, request: pb.ExecuteRequest, context: Any) -> pb.ExecuteResponse:
        spec = await convert.tool_use_run(request, self.registry, self.limits)
        async with aclosing(loop.run(self.client, spec)) as events:
            async for event in events:
                if isinstance(event, Finished):
                    return convert.response(event.result)
        raise AssertionError("unreachable: a tool-use run ends with Finished or raises")

    async def ExecuteStream(self, request_iterator: AsyncIterator[pb.ExecuteStreamRequest],
                            context: Any) -> AsyncIterator[pb.ExecuteStreamResponse]:
        async for event in run_bidi(request_iterator, "execute", self._run):
            yield event

    async def _run(self, start: pb.ExecuteRequest,
                   session: BidiSession[pb.ExecuteStreamRequest]) -> AsyncIterator[pb.ExecuteStreamResponse]:
        spec = await convert.tool_use_run(start, self.registry, self.limits, prefix="execute.")
        async for event in loop.run(self.client, spec):
            yield convert.stream_event(event)

    async def ListTools(self, request: pb.ListToolsRequest, context: Any) -> pb.ListToolsResponse:
        return pb.ListToolsResponse(tools=[convert.tool_spec(t) for t in (await self.registry.tools()).values()])


def build(deps: ServiceDeps) -> ToolUseServicer:
    return ToolUseServicer.build(deps)
