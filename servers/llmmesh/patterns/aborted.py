"""A pattern run that stopped on purpose: a human rejected it, or its retry budget ran out.

ABORTED (not INTERNAL or UNAVAILABLE): the server worked as designed and retrying the same request
as is would likely stop the same way. ErrorInfo.reason tells clients which stop it was.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2

from llmmesh.framework.errors import MeshError


class RunAborted(MeshError):
    code = grpc.StatusCode.ABORTED

    def __init__(self, message: str, reason: str, metadata: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.metadata = dict(metadata or {})

    def details(self) -> list[any_pb2.Any]:
        packed = any_pb2.Any()
        packed.Pack(error_details_pb2.ErrorInfo(reason=self.reason, domain="llmmesh", metadata=self.metadata))
        return [packed]
