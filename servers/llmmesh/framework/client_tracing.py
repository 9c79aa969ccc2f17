"""A CLIENT span per outgoing gRPC call, its traceparent sent in the call's metadata.

Every channel to another mesh service (llmmesh.framework.tls.aio_channel) and to a gRPC tool
server gets these interceptors when tracing is on; off, `client_interceptors()` is empty and the
channel is plain.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind

from llmmesh.framework import tracing


class _Traced:
    """What the four interceptor shapes share: grpc.aio files an interceptor under the first shape
    it is an instance of, so each shape needs its own class."""

    def _start(self, details: grpc.aio.ClientCallDetails) -> tuple[grpc.aio.ClientCallDetails, Span]:
        method = details.method.decode() if isinstance(details.method, bytes) else details.method
        service, _, name = method.lstrip("/").partition("/")
        span = tracing.TRACER.start_span(method.lstrip("/"), kind=SpanKind.CLIENT, attributes={
            "rpc.system": "grpc", "rpc.service": service, "rpc.method": name})
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=trace.set_span_in_context(span))
        metadata = grpc.aio.Metadata(*tuple(details.metadata or ()), *carrier.items())
        return grpc.aio.ClientCallDetails(details.method, details.timeout, metadata, details.credentials,
                                          details.wait_for_ready), span

    async def _call(self, continuation: Any, details: grpc.aio.ClientCallDetails, request: Any) -> Any:
        details, span = self._start(details)
        try:
            call = await continuation(details, request)
        except BaseException as exc:
            tracing.fail(span, exc)
            span.end()
            raise
        call.add_done_callback(lambda done: asyncio.ensure_future(_finish(span, done)))
        return call


class _UnaryUnary(_Traced, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await self._call(continuation, client_call_details, request)


class _UnaryStream(_Traced, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await self._call(continuation, client_call_details, request)


class _StreamUnary(_Traced, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return await self._call(continuation, client_call_details, request_iterator)


class _StreamStream(_Traced, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation: Any, client_call_details: Any,
                                      request_iterator: Any) -> Any:
        return await self._call(continuation, client_call_details, request_iterator)


async def _finish(span: Span, call: grpc.aio.Call) -> None:
    try:
        code = await call.code()
        span.set_attribute("rpc.grpc.status_code", code.value[0])
        if code is not grpc.StatusCode.OK:
            span.set_status(trace.Status(trace.StatusCode.ERROR, code.name))
    finally:
        span.end()


def client_interceptors() -> list[grpc.aio.ClientInterceptor]:
    if not tracing.enabled():
        return []
    return [_UnaryUnary(), _UnaryStream(), _StreamUnary(), _StreamStream()]
