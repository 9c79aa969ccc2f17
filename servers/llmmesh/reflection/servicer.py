"""gRPC face of reflection: Improve and ImproveStream, the shared pattern faces."""

from __future__ import annotations

from llmmesh.patterns.service import Pattern, PatternServicer
from llmmesh.reflection import convert, request
from llmmesh.reflection.events import ReflectionResult
from llmmesh.reflection.run import run
from llmmesh.reflection.v1 import reflection_service_pb2_grpc as pb_grpc


class ReflectionServicer(PatternServicer, pb_grpc.ReflectionServiceServicer):
    pattern = Pattern(start="improve", request=request.from_proto, run=run, result=ReflectionResult,
                      response=convert.response, stream_event=convert.stream_event)
    Improve = PatternServicer.unary
    ImproveStream = PatternServicer.stream


build = ReflectionServicer.build
