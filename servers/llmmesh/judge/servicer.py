"""gRPC face of the judge: translates messages, nothing else (logic: llmmesh.judge.evaluation)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from llmmesh.framework.bidi import BidiSession
from llmmesh.framework.services import ServiceDeps
from llmmesh.judge import convert, evaluation
from llmmesh.judge.criteria import BUILTINS
from llmmesh.judge.evaluation import Judgement
from llmmesh.judge.v1 import judge_service_pb2 as pb
from llmmesh.judge.v1 import judge_service_pb2_grpc as pb_grpc
from llmmesh.patterns.model_client import metered
from llmmesh.patterns.servicer_base import PatternServicer
from llmmesh.patterns.streams import run_bidi


class JudgeServicer(PatternServicer, pb_grpc.JudgeServiceServicer):

    async def Evaluate(self, request: pb.EvaluateRequest, context: Any) -> pb.EvaluateResponse:
        ev = convert.evaluation(request, self.limits)
        with metered() as meter:
            result = await evaluation.evaluate(self.client, ev)
            return convert.response(result, meter.to_proto())

    async def EvaluateStream(self, request_iterator: AsyncIterator[pb.EvaluateStreamRequest],
                             context: Any) -> AsyncIterator[pb.EvaluateStreamResponse]:
        async for event in run_bidi(request_iterator, "evaluate", self._run):
            yield event

    def _run(self, start: pb.EvaluateRequest,
             session: BidiSession[pb.EvaluateStreamRequest]) -> AsyncIterator[pb.EvaluateStreamResponse]:
        return self._events(start)

    async def _events(self, start: pb.EvaluateRequest) -> AsyncIterator[pb.EvaluateStreamResponse]:
        ev = convert.evaluation(start, self.limits, prefix="evaluate.")
        with metered() as meter:
            async for event in evaluation.run(self.client, ev):
                yield convert.stream_event(event, meter.to_proto() if isinstance(event, Judgement) else None)

    async def ListCriteria(self, request: pb.ListCriteriaRequest, context: Any) -> pb.ListCriteriaResponse:
        return pb.ListCriteriaResponse(criteria=[convert.rubric(c) for c in BUILTINS.values()])


def build(deps: ServiceDeps) -> JudgeServicer:
    return JudgeServicer.build(deps)
