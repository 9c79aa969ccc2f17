"""A tool or step Failure as the google.rpc.Status the tool-use and plan-execute contracts carry."""

from __future__ import annotations

from google.rpc import code_pb2, status_pb2

from llmmesh.tools.base import Failure


def failure_status(failure: Failure) -> status_pb2.Status:
    code = code_pb2.Code.Value(failure.code) if failure.code in code_pb2.Code.keys() else code_pb2.UNKNOWN
    return status_pb2.Status(code=code, message=failure.message)
