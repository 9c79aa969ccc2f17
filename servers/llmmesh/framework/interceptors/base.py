"""Shape-aware interceptor plumbing.

grpc.aio hands interceptors a method handler whose behaviour is either an awaitable (unary
responses) or an async generator (streaming responses). Wrapping both the same way breaks
streams, so subclasses implement `unary` and `stream` separately and this module rebuilds the
handler of the right shape around them.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc


@dataclass(frozen=True)
class CallInfo:
    # "/pkg.Service/Method"
    path: str
    service: str
    method: str
    # unary, server_stream, client_stream or bidi_stream (go-grpc-prometheus names).
    grpc_type: str
    context: grpc.aio.ServicerContext
    metadata: dict[str, str]


UnaryInvoke = Callable[[], Awaitable[Any]]
StreamInvoke = Callable[[], AsyncIterator[Any]]


class ShapeInterceptor(grpc.aio.ServerInterceptor):
    """Subclasses override `unary` and/or `stream`; the defaults pass calls through."""

    async def unary(self, call: CallInfo, invoke: UnaryInvoke) -> Any:
        return await invoke()

    def stream(self, call: CallInfo, invoke: StreamInvoke) -> AsyncIterator[Any]:
        return invoke()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        return _wrap(self, handler, handler_call_details.method)


def _call_info(path: str, grpc_type: str, context: grpc.aio.ServicerContext) -> CallInfo:
    service, _, method = path.lstrip("/").partition("/")
    metadata: dict[str, str] = {}
    for key, value in context.invocation_metadata() or ():
        if isinstance(value, str):
            metadata[key.lower()] = value
    return CallInfo(path, service, method, grpc_type, context, metadata)


async def _await_unary(behavior: Callable[..., Any], request: Any, context: Any) -> Any:
    result = behavior(request, context)
    return await result if inspect.isawaitable(result) else result


async def _iterate(behavior: Callable[..., Any], request: Any, context: Any) -> AsyncIterator[Any]:
    result = behavior(request, context)
    if inspect.isawaitable(result):  # handler used context.write(); nothing left to yield
        await result
        return
    async for item in result:
        yield item


def _wrap(icpt: ShapeInterceptor, handler: grpc.RpcMethodHandler, path: str) -> grpc.RpcMethodHandler:
    codec = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary:
        inner_uu = handler.unary_unary

        async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            info = _call_info(path, "unary", context)
            return await icpt.unary(info, lambda: _await_unary(inner_uu, request, context))

        return grpc.unary_unary_rpc_method_handler(unary_unary, **codec)
    if handler.stream_unary:
        inner_su = handler.stream_unary

        async def stream_unary(requests: Any, context: grpc.aio.ServicerContext) -> Any:
            info = _call_info(path, "client_stream", context)
            return await icpt.unary(info, lambda: _await_unary(inner_su, requests, context))

        return grpc.stream_unary_rpc_method_handler(stream_unary, **codec)
    if handler.unary_stream:
        inner_us = handler.unary_stream

        async def unary_stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            info = _call_info(path, "server_stream", context)
            async for item in icpt.stream(info, lambda: _iterate(inner_us, request, context)):
                yield item

        return grpc.unary_stream_rpc_method_handler(unary_stream, **codec)
    inner_ss = handler.stream_stream

    async def stream_stream(requests: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        info = _call_info(path, "bidi_stream", context)
        async for item in icpt.stream(info, lambda: _iterate(inner_ss, requests, context)):
            yield item

    return grpc.stream_stream_rpc_method_handler(stream_stream, **codec)
