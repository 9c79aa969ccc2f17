"""Request id, passed-on headers, deadline capture and one JSON log line per RPC (outermost interceptor)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc

from llmmesh.framework import request_context
from llmmesh.framework.interceptors.base import CallInfo, ShapeInterceptor, StreamInvoke, UnaryInvoke
from llmmesh.topology.description import HEALTH_SERVICE

log = logging.getLogger("llmmesh.rpc")


def outcome_code(context: grpc.aio.ServicerContext, exc: BaseException | None) -> str:
    """The status code an RPC ended with, as seen from an outer interceptor."""
    code = context.code()
    if code is not None and not isinstance(code, int):
        return code.name
    if isinstance(code, int):
        return next((c.name for c in grpc.StatusCode if c.value[0] == code), "UNKNOWN")
    if exc is None:
        return "OK"
    # CancelledError = the client went away or the deadline passed.
    return "CANCELLED" if isinstance(exc, BaseException) and not isinstance(exc, Exception) else "UNKNOWN"


class RequestLogInterceptor(ShapeInterceptor):
    def _begin(self, call: CallInfo) -> tuple[list[Any], float, str]:
        rid = call.metadata.get("x-request-id") or uuid.uuid4().hex
        tokens = [request_context.request_id.set(rid[:128]),
                  request_context.passed_on.set(tuple(
                      (name, call.metadata[name][:64]) for name in request_context.PASSED_ON_HEADERS
                      if call.metadata.get(name)))]
        remaining = call.context.time_remaining()
        if remaining is not None:
            tokens.append(request_context.deadline.set(time.monotonic() + remaining))
        # peer() must be read now: after a client cancels, grpc.aio's call state is gone and
        # reading it crashes the process.
        return tokens, time.perf_counter(), call.context.peer()

    def _end(self, call: CallInfo, started: float, peer: str, exc: BaseException | None, sent: int | None) -> None:
        fields: dict[str, Any] = {
            "grpc_method": call.path,
            "grpc_type": call.grpc_type,
            "grpc_code": outcome_code(call.context, exc),
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            "peer": peer,
        }
        if sent is not None:
            fields["messages_sent"] = sent
        # Health probes arrive every second from every checker: keep them out of the INFO stream.
        level = logging.DEBUG if call.service == HEALTH_SERVICE else logging.INFO
        log.log(level, "rpc finished", extra=fields)

    async def unary(self, call: CallInfo, invoke: UnaryInvoke) -> Any:
        tokens, started, peer = self._begin(call)
        exc: BaseException | None = None
        try:
            return await invoke()
        except BaseException as e:
            exc = e
            raise
        finally:
            self._end(call, started, peer, exc, None)
            _reset(tokens)

    async def stream(self, call: CallInfo, invoke: StreamInvoke) -> AsyncIterator[Any]:
        tokens, started, peer = self._begin(call)
        exc: BaseException | None = None
        sent = 0
        try:
            async for item in invoke():
                sent += 1
                yield item
        except BaseException as e:
            exc = e
            raise
        finally:
            self._end(call, started, peer, exc, sent)
            _reset(tokens)


def _reset(tokens: list[Any]) -> None:
    for token in reversed(tokens):
        try:
            token.var.reset(token)
        except ValueError:  # generator finalised in another context; the RPC's task ends anyway
            pass
