"""Domain errors and their one mapping onto gRPC status codes with rich details.

Pattern and inference code raise these; only the error interceptor (and the stream terminal-event
wrapper, which uses the same mapping) turns them into `google.rpc.Status`. Nothing else decides
status codes, and no stack trace or exception text from an unexpected error leaves the process.

A status travels in HTTP/2 trailers (grpc-message, grpc-status-details-bin), and messages often
quote the request ("unknown tool '…'"). Unbounded, a 70 kB tool name made a trailer block that
gRPC clients refuse (RESOURCE_EXHAUSTED: metadata exceeds the 16 KiB hard limit, 8 KiB soft) and
that Envoy treats as an HTTP/2 protocol error, resetting the whole upstream connection and with
it other clients' requests. So every message, field path and description is clipped (in UTF-8
bytes) and at most MAX_VIOLATIONS are listed: a status stays well under the soft limit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

# Bounds of what a status carries (UTF-8 bytes): see the module docstring.
MAX_MESSAGE_BYTES = 400
MAX_FIELD_BYTES = 120
MAX_DESCRIPTION_BYTES = 240
MAX_VIOLATIONS = 8
# google.rpc.ErrorInfo.domain of every reason this mesh defines.
DOMAIN = "llmmesh"
# ErrorInfo reasons a client may act on (besides those a pattern defines next to its error).
TOOLS_UNSUPPORTED = "TOOLS_UNSUPPORTED"  # the model takes no native tool calls: use prompted ones


def clip(text: str, max_bytes: int) -> str:
    """`text` cut to at most `max_bytes` of UTF-8 (never inside a character), marked with "…"."""
    raw = text.encode("utf-8", errors="replace")
    if len(raw) <= max_bytes:
        return text
    return raw[: max_bytes - 3].decode("utf-8", errors="ignore") + "…"


@dataclass(frozen=True)
class FieldViolation:
    # Path of the offending field in the request, e.g. "panel[2].model".
    field: str
    description: str

    def clipped(self) -> FieldViolation:
        return FieldViolation(clip(self.field, MAX_FIELD_BYTES), clip(self.description, MAX_DESCRIPTION_BYTES))


class MeshError(Exception):
    """Base of every error that carries its own status code."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def details(self) -> list[any_pb2.Any]:
        return []


class InvalidArgument(MeshError):
    """INVALID_ARGUMENT with BadRequest field violations; with `reason`, an ErrorInfo too, so a
    client can tell this refusal from others without reading the message."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, violations: Iterable[FieldViolation], message: str = "", *, reason: str = "") -> None:
        self.reason = reason
        every = list(violations)
        self.violations = [v.clipped() for v in every[:MAX_VIOLATIONS]]
        if len(every) > MAX_VIOLATIONS:
            more = len(every) - MAX_VIOLATIONS
            self.violations.append(FieldViolation("request", f"and {more} more invalid field{'s' * (more > 1)}"))
        summary = "; ".join(f"{v.field}: {v.description}" for v in self.violations)
        super().__init__(message or f"invalid request: {summary}")

    def details(self) -> list[any_pb2.Any]:
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                for v in self.violations
            ]
        )
        if not self.reason:
            return [_pack(bad)]
        return [_pack(bad), error_info(self.reason)]


class NotFound(MeshError):
    code = grpc.StatusCode.NOT_FOUND

    def __init__(self, message: str, resource_type: str = "", resource_name: str = "",
                 description: str = "") -> None:
        super().__init__(message)
        self.resource = error_details_pb2.ResourceInfo(
            resource_type=resource_type, resource_name=clip(resource_name, MAX_FIELD_BYTES),
            description=clip(description, MAX_DESCRIPTION_BYTES),
        )

    def details(self) -> list[any_pb2.Any]:
        return [_pack(self.resource)] if self.resource.resource_type else []


class _RetryableError(MeshError):
    def __init__(self, message: str, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    def details(self) -> list[any_pb2.Any]:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(int(self.retry_after_s * 1e9))
        return [_pack(error_details_pb2.RetryInfo(retry_delay=delay))]


class Overloaded(_RetryableError):
    """Every backend (or a rate limit) is saturated: back off and retry."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(_RetryableError):
    """No backend can serve right now."""

    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(MeshError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class Cancelled(MeshError):
    code = grpc.StatusCode.CANCELLED


class FailedPrecondition(MeshError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class Unimplemented(MeshError):
    code = grpc.StatusCode.UNIMPLEMENTED


class Unauthenticated(MeshError):
    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(MeshError):
    code = grpc.StatusCode.PERMISSION_DENIED


class UpstreamError(MeshError):
    """A model backend answered with something unusable (malformed output, protocol error)."""

    code = grpc.StatusCode.UNAVAILABLE


def error_info(reason: str, metadata: Mapping[str, str] | None = None) -> any_pb2.Any:
    """A packed google.rpc.ErrorInfo of this mesh's domain."""
    return _pack(error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=dict(metadata or {})))


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def to_status(exc: BaseException, request_id: str = "") -> status_pb2.Status:
    """The single exception → google.rpc.Status mapping. Unknown exceptions become a generic
    INTERNAL that names only the request id, so the cause can be found in the server log."""
    if isinstance(exc, MeshError):
        return status_pb2.Status(code=exc.code.value[0], message=clip(exc.message, MAX_MESSAGE_BYTES),
                                 details=exc.details())
    if isinstance(exc, NotImplementedError):
        return status_pb2.Status(code=code_pb2.UNIMPLEMENTED, message="method not implemented")
    suffix = f" (request id {request_id})" if request_id else ""
    return status_pb2.Status(code=code_pb2.INTERNAL, message=f"internal error{suffix}")


def status_code(status: status_pb2.Status) -> grpc.StatusCode:
    return next(c for c in grpc.StatusCode if c.value[0] == status.code)
