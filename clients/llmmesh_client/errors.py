"""Every failure a call can end with, as one exception hierarchy carrying the server's rich details.

A `grpc.RpcError` (its `grpc-status-details-bin` trailer) and a stream's terminal `error` event
(a `google.rpc.Status`) become the same exceptions, so callers handle both one way:

    InvalidArgumentError   INVALID_ARGUMENT, `.field_violations` from google.rpc.BadRequest
    NotFoundError          NOT_FOUND, `.resource` (google.rpc.ResourceInfo)
    RateLimitedError       RESOURCE_EXHAUSTED, `.retry_after` seconds from google.rpc.RetryInfo
    UnavailableError       UNAVAILABLE, `.retry_after`
      MalformedModelOutputError   ErrorInfo reason MALFORMED_MODEL_OUTPUT
      QuorumNotReachedError       ErrorInfo reason QUORUM_NOT_REACHED
    AuthenticationError, PermissionDeniedError, CancelledError, DeadlineExceededError,
    FailedPreconditionError, AbortedError, UnimplementedError, InternalError (INTERNAL, UNKNOWN,
    DATA_LOSS); any other code is a plain LlmMeshError

Each carries `.code` (grpc.StatusCode), `.message`, `.details` (the unpacked detail messages) and
`.request_id` (the `x-request-id` the call was sent with; the server logs under it).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import any_pb2, message
from google.rpc import error_details_pb2, status_pb2

_DETAIL_TYPES: dict[str, type[message.Message]] = {
    cls.DESCRIPTOR.full_name: cls
    for cls in (error_details_pb2.BadRequest, error_details_pb2.ResourceInfo, error_details_pb2.RetryInfo,
                error_details_pb2.ErrorInfo, error_details_pb2.DebugInfo, error_details_pb2.QuotaFailure,
                error_details_pb2.PreconditionFailure, error_details_pb2.RequestInfo, error_details_pb2.Help,
                error_details_pb2.LocalizedMessage)
}
_STATUS_DETAILS_KEY = "grpc-status-details-bin"
_REQUEST_ID_IN_MESSAGE = re.compile(r"\(request id ([^)\s]+)\)")


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


class LlmMeshError(Exception):
    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, code: grpc.StatusCode, message: str, details: Sequence[message.Message] = (),
                 request_id: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details: list[message.Message] = list(details)
        self.request_id = request_id

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"

    def detail(self, cls: type[Any]) -> Any:
        """The first detail of type `cls`, or None."""
        return next((d for d in self.details if isinstance(d, cls)), None)

    @property
    def error_info(self) -> error_details_pb2.ErrorInfo | None:
        return self.detail(error_details_pb2.ErrorInfo)

    @property
    def reason(self) -> str:
        """ErrorInfo.reason, e.g. MALFORMED_MODEL_OUTPUT; empty when the server sent none."""
        info = self.error_info
        return info.reason if info is not None else ""


class InvalidArgumentError(LlmMeshError):
    code = grpc.StatusCode.INVALID_ARGUMENT

    @property
    def field_violations(self) -> list[FieldViolation]:
        return [FieldViolation(v.field, v.description)
                for d in self.details if isinstance(d, error_details_pb2.BadRequest) for v in d.field_violations]


class NotFoundError(LlmMeshError):
    code = grpc.StatusCode.NOT_FOUND

    @property
    def resource(self) -> error_details_pb2.ResourceInfo | None:
        return self.detail(error_details_pb2.ResourceInfo)


class _RetryableError(LlmMeshError):
    @property
    def retry_after(self) -> float | None:
        """Seconds the server asked to wait before retrying (google.rpc.RetryInfo), if it said."""
        info = self.detail(error_details_pb2.RetryInfo)
        if info is None or not info.HasField("retry_delay"):
            return None
        return info.retry_delay.ToNanoseconds() / 1e9


class RateLimitedError(_RetryableError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class UnavailableError(_RetryableError):
    code = grpc.StatusCode.UNAVAILABLE


class MalformedModelOutputError(UnavailableError):
    """The model's structured answer stayed invalid after the server's attempts; a retry may help."""


class QuorumNotReachedError(UnavailableError):
    """Too few jurors answered for the jury to decide."""


class AuthenticationError(LlmMeshError):
    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDeniedError(LlmMeshError):
    code = grpc.StatusCode.PERMISSION_DENIED


class CancelledError(LlmMeshError):
    code = grpc.StatusCode.CANCELLED


class DeadlineExceededError(LlmMeshError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class FailedPreconditionError(LlmMeshError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class AbortedError(LlmMeshError):
    """The run was ended on purpose, e.g. a rejected plan (reason PLAN_REJECTED)."""

    code = grpc.StatusCode.ABORTED


class UnimplementedError(LlmMeshError):
    code = grpc.StatusCode.UNIMPLEMENTED


class InternalError(LlmMeshError):
    code = grpc.StatusCode.INTERNAL

    def __init__(self, code: grpc.StatusCode, message: str, details: Sequence[message.Message] = (),
                 request_id: str = "") -> None:
        # The server names the id it logged under; prefer it to ours (they match unless a proxy
        # in between assigned one).
        found = _REQUEST_ID_IN_MESSAGE.search(message)
        super().__init__(code, message, details, found.group(1) if found else request_id)


_BY_CODE: dict[grpc.StatusCode, type[LlmMeshError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: RateLimitedError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.UNAUTHENTICATED: AuthenticationError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.CANCELLED: CancelledError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.ABORTED: AbortedError,
    grpc.StatusCode.UNIMPLEMENTED: UnimplementedError,
    grpc.StatusCode.INTERNAL: InternalError,
    grpc.StatusCode.UNKNOWN: InternalError,
    grpc.StatusCode.DATA_LOSS: InternalError,
}
_BY_REASON: dict[str, type[LlmMeshError]] = {
    "MALFORMED_MODEL_OUTPUT": MalformedModelOutputError,
    "QUORUM_NOT_REACHED": QuorumNotReachedError,
}


def unpack_details(details: Sequence[any_pb2.Any]) -> list[message.Message]:
    """Known google.rpc detail types unpacked; anything else is kept as the Any."""
    out: list[message.Message] = []
    for packed in details:
        cls = _DETAIL_TYPES.get(packed.TypeName())
        if cls is None:
            out.append(packed)
            continue
        detail = cls()
        packed.Unpack(detail)
        out.append(detail)
    return out


def status_code(code: int) -> grpc.StatusCode:
    return next((c for c in grpc.StatusCode if c.value[0] == code), grpc.StatusCode.UNKNOWN)


def make_error(code: grpc.StatusCode, message: str, details: Sequence[message.Message] = (),
               request_id: str = "") -> LlmMeshError:
    cls = _BY_CODE.get(code, LlmMeshError)
    if cls is UnavailableError:
        reason = next((d.reason for d in details if isinstance(d, error_details_pb2.ErrorInfo)), "")
        cls = _BY_REASON.get(reason, cls)
    return cls(code, message, details, request_id)


def from_status(status: status_pb2.Status, request_id: str = "") -> LlmMeshError:
    """A stream's `error` event (google.rpc.Status) as an exception."""
    return make_error(status_code(status.code), status.message, unpack_details(status.details), request_id)


def from_rpc_error(error: grpc.RpcError, request_id: str = "") -> LlmMeshError:
    """A failed call as an exception, with the rich details from its trailers."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    text = (error.details() if hasattr(error, "details") else "") or ""
    details: list[message.Message] = []
    trailers = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
    for key, value in trailers or ():
        if key == _STATUS_DETAILS_KEY and isinstance(value, bytes):
            status = status_pb2.Status.FromString(value)
            details = unpack_details(status.details)
            text = text or status.message
    return make_error(code or grpc.StatusCode.UNKNOWN, text, details, request_id)
