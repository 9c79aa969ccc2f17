"""ReflectionService: generate, critique, revise until good enough."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Required, TypedDict, Unpack

from llmmesh_client._proto.llmmesh.reflection.v1 import reflection_service_pb2 as pb
from llmmesh_client.blocking import Facade, blocking, wrapping
from llmmesh_client.methods import REFLECTION
from llmmesh_client.services.pattern import Options, PatternService
from llmmesh_client.sessions import AsyncRunStream, RunStream


class ImproveFields(TypedDict, total=False):
    task: Required[str]
    initial_draft: str
    model: str
    critic_model: str
    criteria: str
    max_rounds: int
    score_threshold: float
    options: Options
    # False: the run is not kept in the run store (it still gets a run_id).
    store: bool


class AsyncReflection(PatternService):
    def improve(self, *, timeout: float | None = None, request_id: str | None = None,
                **fields: Unpack[ImproveFields]) -> Awaitable[pb.ImproveResponse]:
        return self._unary(REFLECTION["Improve"], pb.ImproveRequest, fields, timeout, request_id)

    def improve_stream(self, *, timeout: float | None = None, request_id: str | None = None,
                       **fields: Unpack[ImproveFields]) -> AsyncRunStream[pb.ImproveStreamResponse]:
        """Events: `delta`, `draft`, `critique` per round, then `result`."""
        return self._stream(REFLECTION["ImproveStream"], "improve", pb.ImproveRequest, fields, timeout,
                            request_id, AsyncRunStream)


class Reflection(Facade[AsyncReflection]):
    improve = blocking(AsyncReflection.improve)
    improve_stream = wrapping(AsyncReflection.improve_stream, RunStream[pb.ImproveStreamResponse])
