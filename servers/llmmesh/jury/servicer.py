"""gRPC face of the jury: Evaluate and EvaluateStream, the shared pattern faces."""

from __future__ import annotations

from llmmesh.jury import convert, request
from llmmesh.jury.events import JuryResult
from llmmesh.jury.run import run
from llmmesh.jury.v1 import jury_service_pb2_grpc as pb_grpc
from llmmesh.patterns.service import Pattern, PatternServicer


class JuryServicer(PatternServicer, pb_grpc.JuryServiceServicer):
    pattern = Pattern(start="evaluate", request=request.from_proto, run=run, result=JuryResult,
                      response=convert.response, stream_event=convert.stream_event)
    Evaluate = PatternServicer.unary
    EvaluateStream = PatternServicer.stream


build = JuryServicer.build
