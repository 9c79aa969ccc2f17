"""One SERVER span per RPC, continuing the caller's trace (W3C traceparent in the metadata).

Outermost, so the request log line and everything under it carry the span's trace id. Health
checks (Envoy probes every service every second) are not traced. Installed only when tracing is
on (llmmesh.framework.server): off, no RPC pays for it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import grpc
from opentelemetry.trace import Span, SpanKind

from llmmesh.framework import tracing
from llmmesh.framework.interceptors.base import CallInfo, ShapeInterceptor, StreamInvoke, UnaryInvoke
from llmmesh.framework.interceptors.request_log import outcome_code
from llmmesh.topology.description import HEALTH_SERVICE


class TracingInterceptor(ShapeInterceptor):
    @contextmanager
    def _span(self, call: CallInfo) -> Iterator[Span]:
        attributes = {"rpc.system": "grpc", "rpc.service": call.service, "rpc.method": call.method}
        with tracing.span(call.path.lstrip("/"), attributes, kind=SpanKind.SERVER,
                          parent=tracing.extract(call.metadata)) as span:
            exc: BaseException | None = None
            try:
                yield span
            except BaseException as e:
                exc = e
                raise
            finally:
                code = outcome_code(call.context, exc)
                span.set_attribute("rpc.grpc.status_code", grpc.StatusCode[code].value[0])

    async def unary(self, call: CallInfo, invoke: UnaryInvoke) -> Any:
        if call.service == HEALTH_SERVICE:
            return await invoke()
        with self._span(call):
            return await invoke()

    async def stream(self, call: CallInfo, invoke: StreamInvoke) -> AsyncIterator[Any]:
        if call.service == HEALTH_SERVICE:
            async for item in invoke():
                yield item
            return
        with self._span(call):
            async for item in invoke():
                yield item
