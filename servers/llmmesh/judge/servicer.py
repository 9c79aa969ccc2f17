"""gRPC face of the judge: Evaluate and EvaluateStream (the shared pattern faces), and ListCriteria."""

from __future__ import annotations

from typing import Any

from llmmesh.judge import convert, request
from llmmesh.judge.criteria import BUILTINS
from llmmesh.judge.events import JudgeResult
from llmmesh.judge.run import run
from llmmesh.judge.v1 import judge_service_pb2 as pb
from llmmesh.judge.v1 import judge_service_pb2_grpc as pb_grpc
from llmmesh.patterns.service import Pattern, PatternServicer


class JudgeServicer(PatternServicer, pb_grpc.JudgeServiceServicer):
    pattern = Pattern(start="evaluate", request=request.from_proto, run=run, result=JudgeResult,
                      response=convert.response, stream_event=convert.stream_event)
    Evaluate = PatternServicer.unary
    EvaluateStream = PatternServicer.stream

    async def ListCriteria(self, request: pb.ListCriteriaRequest, context: Any) -> pb.ListCriteriaResponse:
        return pb.ListCriteriaResponse(criteria=[convert.rubric(c) for c in BUILTINS.values()])


build = JudgeServicer.build
