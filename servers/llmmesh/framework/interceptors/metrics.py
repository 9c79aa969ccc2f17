"""grpc_server_started/handled/handling_seconds for every RPC shape."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from llmmesh.framework.interceptors.base import CallInfo, ShapeInterceptor, StreamInvoke, UnaryInvoke
from llmmesh.framework.interceptors.request_log import outcome_code
from llmmesh.framework.metrics import GrpcServerMetrics


class MetricsInterceptor(ShapeInterceptor):
    def __init__(self, metrics: GrpcServerMetrics) -> None:
        self._m = metrics

    def _labels(self, call: CallInfo) -> tuple[str, str, str]:
        return call.grpc_type, call.service, call.method

    def _done(self, call: CallInfo, started: float, exc: BaseException | None) -> None:
        labels = self._labels(call)
        self._m.handled.labels(*labels, outcome_code(call.context, exc)).inc()
        self._m.handling_seconds.labels(*labels).observe(time.perf_counter() - started)

    async def unary(self, call: CallInfo, invoke: UnaryInvoke) -> Any:
        self._m.started.labels(*self._labels(call)).inc()
        started, exc = time.perf_counter(), None
        try:
            return await invoke()
        except BaseException as e:
            exc = e
            raise
        finally:
            self._done(call, started, exc)

    async def stream(self, call: CallInfo, invoke: StreamInvoke) -> AsyncIterator[Any]:
        self._m.started.labels(*self._labels(call)).inc()
        sent = self._m.msg_sent.labels(*self._labels(call))
        started, exc = time.perf_counter(), None
        try:
            async for item in invoke():
                sent.inc()
                yield item
        except BaseException as e:
            exc = e
            raise
        finally:
            self._done(call, started, exc)
