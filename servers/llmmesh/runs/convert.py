"""Stored runs → protobuf."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format, struct_pb2
from google.rpc import status_pb2

from llmmesh.common.v1 import common_pb2
from llmmesh.runs.record import RunRecord, RunStatus
from llmmesh.runs.v1 import runs_service_pb2 as pb

STATUSES = {RunStatus.SUCCEEDED: pb.RUN_STATUS_SUCCEEDED, RunStatus.FAILED: pb.RUN_STATUS_FAILED,
            RunStatus.CANCELLED: pb.RUN_STATUS_CANCELLED}


def _struct(value: dict[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    json_format.ParseDict(value, out)
    return out


def run(r: RunRecord) -> pb.Run:
    out = pb.Run(run_id=r.run_id, pattern=r.pattern, method=r.method, status=STATUSES[r.status],
                 principal=r.principal, duration_ms=r.duration_ms, models=r.models, backends=r.backends,
                 usage=common_pb2.Usage(prompt_tokens=r.prompt_tokens, output_tokens=r.output_tokens,
                                        model_calls=r.model_calls, duration_ms=r.duration_ms),
                 request=_struct(r.request), events=[_struct(e) for e in r.events], events_dropped=r.events_dropped)
    out.created_at.FromDatetime(r.created_at)
    if r.result is not None:
        out.result.CopyFrom(_struct(r.result))
    if r.status is not RunStatus.SUCCEEDED:
        out.error.CopyFrom(status_pb2.Status(code=r.error_code, message=r.error_message))
    return out
