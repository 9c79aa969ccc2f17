"""The gateway's one error type, `ApiError`, and the one mapping from the mesh's gRPC statuses onto
it. Each front door renders it in its API's shape with the same HTTP status: OpenAI's
`{"error": {"message", "type", "param", "code"}}`, Ollama's `{"error": "<message>"}`."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status


@dataclass(eq=False)
class ApiError(Exception):
    status: int
    message: str
    type: str = "invalid_request_error"
    param: str | None = None
    code: str | None = None
    # From google.rpc.RetryInfo: sent as Retry-After (the OpenAI SDKs honour it).
    retry_after_s: float | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)
        if self.retry_after_s is not None:
            self.headers["retry-after"] = str(max(1, math.ceil(self.retry_after_s)))
            self.headers["retry-after-ms"] = str(max(1, round(self.retry_after_s * 1000)))

    def openai_body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def ollama_body(self) -> dict[str, Any]:
        return {"error": self.message}


def invalid(param: str | None, message: str, code: str | None = "invalid_value") -> ApiError:
    return ApiError(400, message, "invalid_request_error", param, code)


# gRPC code -> (HTTP status, OpenAI error type, OpenAI error code); Ollama uses the status alone.
_BY_CODE: dict[int, tuple[int, str, str | None]] = {
    code_pb2.INVALID_ARGUMENT: (400, "invalid_request_error", "invalid_value"),
    code_pb2.FAILED_PRECONDITION: (400, "invalid_request_error", None),
    code_pb2.OUT_OF_RANGE: (400, "invalid_request_error", None),
    code_pb2.UNAUTHENTICATED: (401, "invalid_request_error", "invalid_api_key"),
    code_pb2.PERMISSION_DENIED: (403, "invalid_request_error", "permission_denied"),
    code_pb2.NOT_FOUND: (404, "invalid_request_error", "model_not_found"),
    code_pb2.ABORTED: (409, "server_error", None),
    code_pb2.RESOURCE_EXHAUSTED: (429, "requests", "rate_limit_exceeded"),
    # The client went away; nobody reads this, but logs and metrics do (nginx's 499).
    code_pb2.CANCELLED: (499, "server_error", "cancelled"),
    code_pb2.UNIMPLEMENTED: (501, "server_error", "not_implemented"),
    code_pb2.UNAVAILABLE: (503, "server_error", "service_unavailable"),
    code_pb2.DEADLINE_EXCEEDED: (504, "server_error", "timeout"),
}
_INTERNAL = (500, "server_error", None)

# A field path of the inference request -> the API parameter it came from.
ParamMapper = Callable[[str], str]


def identity(field_path: str) -> str:
    return field_path


def from_status(status: status_pb2.Status, param_of: ParamMapper = identity) -> ApiError:
    http, kind, code = _BY_CODE.get(status.code, _INTERNAL)
    param: str | None = None
    retry: float | None = None
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR) and param is None:
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            if bad.field_violations:
                param = param_of(bad.field_violations[0].field)
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            retry = info.retry_delay.ToNanoseconds() / 1e9
        elif detail.Is(error_details_pb2.ResourceInfo.DESCRIPTOR) and status.code == code_pb2.NOT_FOUND:
            param = "model"
    if status.code == code_pb2.NOT_FOUND and param is None:
        param = "model"
    return ApiError(http, status.message or "error", kind, param, code, retry_after_s=retry)


def status_of(exc: grpc.aio.AioRpcError) -> status_pb2.Status:
    """The rich google.rpc.Status of a failed call (details from grpc-status-details-bin)."""
    rich = rpc_status.from_call(exc)  # type: ignore[arg-type]
    if rich is not None:
        return rich
    return status_pb2.Status(code=exc.code().value[0], message=exc.details() or exc.code().name)


def from_rpc_error(exc: grpc.aio.AioRpcError, param_of: ParamMapper = identity) -> ApiError:
    return from_status(status_of(exc), param_of)


_INDEX = re.compile(r"\[\d+\]")


def chat_param(max_tokens_param: str = "max_tokens") -> ParamMapper:
    """Field paths of CompleteChatRequest/ChatTurn -> chat.completions parameters."""

    def mapper(path: str) -> str:
        if path.startswith("options."):
            name = _INDEX.sub("", path.removeprefix("options.")).split(".", 1)[0]
            return max_tokens_param if name == "max_tokens" else name
        if path == "json_schema" or path.startswith("json_schema."):
            return "response_format"
        if path.startswith("tools[") and path.endswith(".name"):
            return path.removesuffix(".name") + ".function.name"
        return path

    return mapper


def embeddings_param(path: str) -> str:
    return "input" if path.startswith("inputs") else path
