"""gRPC face of the reflection service: translates messages, the loop lives in refine.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from llmmesh.framework.bidi import BidiSession
from llmmesh.framework.services import ServiceDeps
from llmmesh.patterns.servicer_base import PatternServicer
from llmmesh.patterns.streams import run_bidi
from llmmesh.reflection import convert, refine
from llmmesh.reflection.events import ReflectionEvent
from llmmesh.reflection.v1 import reflection_service_pb2 as pb
from llmmesh.reflection.v1 import reflection_service_pb2_grpc as pb_grpc


class ReflectionServicer(PatternServicer, pb_grpc.ReflectionServiceServicer):

    async def Improve(self, request: pb.ImproveRequest, context: Any) -> pb.ImproveResponse:
        req = convert.reflection_request(request, self.limits)
        return convert.improve_response(await refine.improve_result(self.client, req))

    async def ImproveStream(self, request_iterator: AsyncIterator[pb.ImproveStreamRequest],
                            context: Any) -> AsyncIterator[pb.ImproveStreamResponse]:
        async for event in run_bidi(request_iterator, "improve", self._run):
            yield convert.stream_event(event)

    async def _run(self, start: pb.ImproveRequest, session: BidiSession[Any]) -> AsyncIterator[ReflectionEvent]:
        req = convert.reflection_request(start, self.limits, prefix="improve.")
        async for event in refine.improve(self.client, req):
            yield event


def build(deps: ServiceDeps) -> ReflectionServicer:
    return ReflectionServicer.build(deps)
