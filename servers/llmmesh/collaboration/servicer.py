"""gRPC face of the collaboration service: translates messages; the strategies live beside it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from llmmesh.collaboration import convert, run
from llmmesh.collaboration.events import CollaborationEvent
from llmmesh.collaboration.v1 import collaboration_service_pb2 as pb
from llmmesh.collaboration.v1 import collaboration_service_pb2_grpc as pb_grpc
from llmmesh.framework.bidi import BidiSession
from llmmesh.framework.services import ServiceDeps
from llmmesh.patterns.servicer_base import PatternServicer
from llmmesh.patterns.streams import run_bidi


class CollaborationServicer(PatternServicer, pb_grpc.CollaborationServiceServicer):

    async def Run(self, request: pb.RunRequest, context: Any) -> pb.RunResponse:
        req = convert.run_request(request, self.limits, streaming=False)
        return convert.run_response(await run.collaboration_result(self.client, req))

    async def RunStream(self, request_iterator: AsyncIterator[pb.RunStreamRequest],
                        context: Any) -> AsyncIterator[pb.RunStreamResponse]:
        async for event in run_bidi(request_iterator, "run", self._run):
            yield convert.stream_event(event)

    async def _run(self, start: pb.RunRequest, session: BidiSession[Any]) -> AsyncIterator[CollaborationEvent]:
        req = convert.run_request(start, self.limits, streaming=True, prefix="run.")
        async for event in run.collaborate(self.client, req, convert.human_input(session, self.limits)):
            yield event


def build(deps: ServiceDeps) -> CollaborationServicer:
    return CollaborationServicer.build(deps)
