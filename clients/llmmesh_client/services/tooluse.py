"""ToolUseService: the model calls tools until it answers."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Required, TypedDict, Unpack

from llmmesh_client._proto.llmmesh.tooluse.v1 import tooluse_service_pb2 as pb
from llmmesh_client.blocking import Facade, blocking, wrapping
from llmmesh_client.methods import TOOLUSE
from llmmesh_client.services.pattern import Options, PatternService
from llmmesh_client.sessions import AsyncRunStream, RunStream


class ExecuteFields(TypedDict, total=False):
    prompt: Required[str]
    system: str
    model: str
    # Tool names offered to the model; empty offers every built-in tool.
    tools: Sequence[str]
    max_steps: int
    options: Options
    # False: the run is not kept in the run store (it still gets a run_id).
    store: bool


class AsyncToolUse(PatternService):
    def execute(self, *, timeout: float | None = None, request_id: str | None = None,
                **fields: Unpack[ExecuteFields]) -> Awaitable[pb.ExecuteResponse]:
        return self._unary(TOOLUSE["Execute"], pb.ExecuteRequest, fields, timeout, request_id)

    def execute_stream(self, *, timeout: float | None = None, request_id: str | None = None,
                       **fields: Unpack[ExecuteFields]) -> AsyncRunStream[pb.ExecuteStreamResponse]:
        """Events: `tool_call`, `tool_result`, `answer` deltas, then `result`."""
        return self._stream(TOOLUSE["ExecuteStream"], "execute", pb.ExecuteRequest, fields, timeout, request_id,
                            AsyncRunStream)

    def list_tools(self, *, timeout: float | None = None,
                   request_id: str | None = None) -> Awaitable[pb.ListToolsResponse]:
        return self._unary(TOOLUSE["ListTools"], pb.ListToolsRequest, {}, timeout, request_id)


class ToolUse(Facade[AsyncToolUse]):
    execute = blocking(AsyncToolUse.execute)
    execute_stream = wrapping(AsyncToolUse.execute_stream, RunStream[pb.ExecuteStreamResponse])
    list_tools = blocking(AsyncToolUse.list_tools)
