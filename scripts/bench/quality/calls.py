"""Run one task against a mesh over REST through the Envoy ingress, as a user's client would."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from google.rpc import code_pb2

from .checks import Check, check
from .taskset import Task

ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"


@dataclass(frozen=True)
class CallError:
    """How a call failed: the google.rpc.Status the mesh answered, or a client-side failure."""

    http_status: int  # 0: no HTTP answer (timeout, connection)
    code: str  # gRPC code name, or TIMEOUT / TRANSPORT / BAD_BODY
    reason: str  # ErrorInfo reason, if any
    message: str
    metadata: dict[str, str] = field(default_factory=dict)  # ErrorInfo metadata

    @property
    def label(self) -> str:
        return f"{self.code} {self.reason}".strip()


@dataclass(frozen=True)
class Outcome:
    task: Task
    seconds: float
    result: dict[str, Any] | None
    error: CallError | None
    check: Check | None

    @property
    def success(self) -> bool:
        return self.error is None and self.check is not None and self.check.success

    @property
    def correct(self) -> bool | None:
        if not self.task.expect:
            return None
        return self.check.correct if self.check is not None else False

    def usage(self) -> dict[str, int]:
        u = (self.result or {}).get("usage", {})
        return {k: int(u.get(k, 0)) for k in ("prompt_tokens", "output_tokens", "model_calls")}

    def why(self) -> str:
        """One line: the error, the problems, or the labels missed ("" when all is well)."""
        if self.error is not None:
            return f"{self.error.label}: {self.error.message}"
        assert self.check is not None
        return "; ".join(self.check.problems + self.check.misses)


def status_error(http_status: int, status: dict[str, Any]) -> CallError:
    """A google.rpc.Status (as JSON) → CallError."""
    code = status.get("code", code_pb2.UNKNOWN)
    name = code_pb2.Code.Name(code) if code in code_pb2.Code.values() else str(code)
    info = next((d for d in status.get("details", []) if d.get("@type") == ERROR_INFO), {})
    return CallError(http_status, name, info.get("reason", ""), status.get("message", ""), info.get("metadata", {}))


def _sse_result(text: str) -> tuple[dict[str, Any] | None, CallError | None]:
    """The terminal event of a `:stream` route's Server-Sent Events: its result or its error."""
    frames = [f.removeprefix("data: ") for f in text.strip().split("\n\n") if f.startswith("data: ")]
    last = json.loads(frames[-1]) if frames else {}
    if "result" in last:
        return last["result"], None
    if "error" in last:
        return None, status_error(200, last["error"])
    return None, CallError(200, "BAD_BODY", "", f"the stream ended without a result or an error: {text[-200:]!r}")


async def call(client: httpx.AsyncClient, task: Task) -> tuple[dict[str, Any] | None, CallError | None]:
    """POST the task's body to its route; the result, or how it failed."""
    try:
        resp = await client.post(task.route, json=task.body)
    except httpx.TimeoutException as exc:
        return None, CallError(0, "TIMEOUT", "", f"no answer within the client's timeout ({type(exc).__name__})")
    except httpx.HTTPError as exc:
        return None, CallError(0, "TRANSPORT", "", f"{type(exc).__name__}: {exc}")
    try:
        if resp.status_code != 200:
            return None, status_error(resp.status_code, resp.json())
        if task.streaming:
            return _sse_result(resp.text)
        return resp.json(), None
    except ValueError:
        return None, CallError(resp.status_code, "BAD_BODY", "", resp.text[:200])


async def run_task(client: httpx.AsyncClient, task: Task) -> Outcome:
    started = time.perf_counter()
    result, error = await call(client, task)
    seconds = time.perf_counter() - started
    return Outcome(task, seconds, result, error, check(task, result) if result is not None else None)
