"""gRPC face of the jury: translates messages, nothing else (logic: llmmesh.jury.deliberation)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from llmmesh.framework.bidi import BidiSession
from llmmesh.framework.services import ServiceDeps
from llmmesh.jury import convert, deliberation
from llmmesh.jury.deliberation import JurorVerdict
from llmmesh.jury.v1 import jury_service_pb2 as pb
from llmmesh.jury.v1 import jury_service_pb2_grpc as pb_grpc
from llmmesh.patterns.model_client import metered
from llmmesh.patterns.servicer_base import PatternServicer
from llmmesh.patterns.streams import run_bidi


class JuryServicer(PatternServicer, pb_grpc.JuryServiceServicer):

    async def Evaluate(self, request: pb.EvaluateRequest, context: Any) -> pb.EvaluateResponse:
        trial = convert.trial(request, self.limits)
        with metered() as meter:
            result = await deliberation.decide(self.client, trial)
            return convert.response(result, meter.to_proto())

    async def EvaluateStream(self, request_iterator: AsyncIterator[pb.EvaluateStreamRequest],
                             context: Any) -> AsyncIterator[pb.EvaluateStreamResponse]:
        async for event in run_bidi(request_iterator, "evaluate", self._run):
            yield event

    def _run(self, start: pb.EvaluateRequest,
             session: BidiSession[pb.EvaluateStreamRequest]) -> AsyncIterator[pb.EvaluateStreamResponse]:
        return self._events(start)

    async def _events(self, start: pb.EvaluateRequest) -> AsyncIterator[pb.EvaluateStreamResponse]:
        trial = convert.trial(start, self.limits, prefix="evaluate.")
        with metered() as meter:
            async for event in deliberation.deliberate(self.client, trial):
                if isinstance(event, JurorVerdict):
                    yield pb.EvaluateStreamResponse(juror_verdict=convert.verdict(event))
                else:
                    yield pb.EvaluateStreamResponse(result=convert.response(event, meter.to_proto()))


def build(deps: ServiceDeps) -> JuryServicer:
    return JuryServicer.build(deps)
