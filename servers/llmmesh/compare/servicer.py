"""gRPC face of comparisons: Run and RunStream, the shared pattern faces."""

from __future__ import annotations

from llmmesh.compare import convert, request
from llmmesh.compare.events import CompareResult
from llmmesh.compare.run import run
from llmmesh.compare.v1 import compare_service_pb2_grpc as pb_grpc
from llmmesh.patterns.service import Pattern, PatternServicer


class CompareServicer(PatternServicer, pb_grpc.CompareServiceServicer):
    pattern = Pattern(start="run", request=request.from_proto, run=run, result=CompareResult,
                      response=convert.response, stream_event=convert.stream_event)
    Run = PatternServicer.unary
    RunStream = PatternServicer.stream


build = CompareServicer.build
