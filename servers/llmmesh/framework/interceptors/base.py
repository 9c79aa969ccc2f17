"""Shape-aware interceptor plumbing.

grpc.aio hands interceptors a method handler whose behaviour is either an awaitable (unary
responses) or an async generator (streaming responses). Wrapping both the same way breaks
streams, so subclasses implement `unary` and `stream` separately and this module rebuilds the
handler of the right shape around them.
"""

from __future__ import annotations

import inspect
import weakref
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


# The streaming behaviour of each handler `_wrap` built, as a plain function returning the
# interceptor's stream: the next interceptor out (or an in-process call) calls it directly rather
# than through the async generator grpc.aio needs at the top, one generator layer less per message
# and interceptor.
_DIRECT: weakref.WeakKeyDictionary[Callable[..., Any], Callable[..., AsyncIterator[Any]]] = weakref.WeakKeyDictionary()


def direct_stream(behavior: Callable[..., Any]) -> Callable[..., Any]:
    """`behavior`, or what it wraps when `_wrap` built it (the same stream, one layer less)."""
    return _DIRECT.get(behavior, behavior)


def _stream_of(behavior: Callable[..., Any], request: Any, context: Any) -> AsyncIterator[Any]:
    result = direct_stream(behavior)(request, context)
    return _awaited(result) if inspect.isawaitable(result) else result


async def _awaited(result: Awaitable[Any]) -> AsyncIterator[Any]:
    await result  # the handler used context.write(); nothing left to yield
    return
    yield  # an async generator


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

        def unary_stream_direct(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            info = _call_info(path, "server_stream", context)
            return icpt.stream(info, lambda: _stream_of(inner_us, request, context))

        return grpc.unary_stream_rpc_method_handler(_generator(unary_stream_direct), **codec)
    inner_ss = handler.stream_stream

    def stream_stream_direct(requests: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        info = _call_info(path, "bidi_stream", context)
        return icpt.stream(info, lambda: _stream_of(inner_ss, requests, context))

    return grpc.stream_stream_rpc_method_handler(_generator(stream_stream_direct), **codec)


def _generator(direct: Callable[..., AsyncIterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
    """`direct` as the async generator function grpc.aio requires of a streaming handler."""

    async def behavior(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        async for item in direct(request, context):
            yield item

    _DIRECT[behavior] = direct
    return behavior
