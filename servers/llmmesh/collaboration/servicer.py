"""gRPC face of collaboration: Run and RunStream, the shared pattern faces (human turns are read
from the stream by the request's `human`)."""

from __future__ import annotations

from llmmesh.collaboration import convert, request
from llmmesh.collaboration.events import CollaborationResult
from llmmesh.collaboration.run import run
from llmmesh.collaboration.v1 import collaboration_service_pb2_grpc as pb_grpc
from llmmesh.patterns.service import Pattern, PatternServicer


class CollaborationServicer(PatternServicer, pb_grpc.CollaborationServiceServicer):
    pattern = Pattern(start="run", request=request.from_proto, run=run, result=CollaborationResult,
                      response=convert.response, stream_event=convert.stream_event)
    Run = PatternServicer.unary
    RunStream = PatternServicer.stream


build = CollaborationServicer.build
