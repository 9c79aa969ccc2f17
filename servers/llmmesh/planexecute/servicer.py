"""gRPC face of plan-and-execute: Run and RunStream, the shared pattern faces (plan decisions are
read from the stream by the request's approver)."""

from __future__ import annotations

from llmmesh.patterns.service import Pattern, PatternServicer, ToolPatternServicer
from llmmesh.planexecute import convert, request
from llmmesh.planexecute.events import PlanResult
from llmmesh.planexecute.run import run
from llmmesh.planexecute.v1 import planexecute_service_pb2_grpc as pb_grpc


class PlanExecuteServicer(ToolPatternServicer, pb_grpc.PlanExecuteServiceServicer):
    pattern = Pattern(start="run", request=request.from_proto, run=run, result=PlanResult,
                      response=convert.response, stream_event=convert.stream_event)
    Run = PatternServicer.unary
    RunStream = PatternServicer.stream


build = PlanExecuteServicer.build
