"""A pattern run that stopped on purpose: a human rejected it, or its retry budget ran out.

ABORTED (not INTERNAL or UNAVAILABLE): the server worked as designed and retrying the same request
as is would likely stop the same way. ErrorInfo.reason tells clients which stop it was.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2

from llmmesh.framework.errors import MeshError, error_info


class RunAborted(MeshError):
    code = grpc.StatusCode.ABORTED

    def __init__(self, message: str, reason: str, metadata: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.metadata = dict(metadata or {})

    def details(self) -> list[any_pb2.Any]:
        return [error_info(self.reason, self.metadata)]
