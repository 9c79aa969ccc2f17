"""Calls to this process's own gRPC services without the network: a stand-in for `grpc.aio.Channel`
that the generated stubs accept, for unary and server-streaming methods.

A call is served by the very method handlers the server's port serves, behind the same interceptors
in the same order (request log, metrics, API keys and quotas, error mapping), with the caller's
metadata and deadline, in a task of its own with a fresh context — as a gRPC server runs it. What it
skips is the per-message cost of a real call: serialization, HTTP/2 framing, Core's completion
queue and its polling thread, on both sides. The monolith's gateway (the OpenAI and Ollama fronts)
reaches its inference service this way: that hop was most of the gateway's CPU per stream.

A failed call raises `grpc.aio.AioRpcError` with the status, details and trailing metadata
(google.rpc details in grpc-status-details-bin) the server would have sent. Cancelling the call, or
its deadline passing, cancels the handler's task, and with it the model call behind it.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from functools import partial
from typing import Any, NamedTuple

import grpc
from opentelemetry import propagate

from llmmesh.framework import tracing
from llmmesh.framework.interceptors.base import direct_stream

log = logging.getLogger("llmmesh.local")

Metadata = tuple[tuple[str, str], ...]
# What a local call's peer() says (the request log's `peer` field).
PEER = "local"
# Put after the last response when the reader is waiting for one.
_END = object()


class _CallDetails(NamedTuple):
    """grpc.HandlerCallDetails as grpc.aio builds it."""

    method: str
    invocation_metadata: Metadata


class HandlerTable:
    """The method handlers a server serves, recorded as the generated `add_*_to_server` functions
    register them (pass it where they expect a server)."""

    def __init__(self) -> None:
        self._generic: list[grpc.GenericRpcHandler] = []
        self._registered: dict[str, grpc.RpcMethodHandler] = {}

    def add_generic_rpc_handlers(self, handlers: Iterable[grpc.GenericRpcHandler]) -> None:
        self._generic.extend(handlers)

    def add_registered_method_handlers(self, service: str, handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        self._registered.update({f"/{service}/{name}": h for name, h in handlers.items()})

    def lookup(self, details: _CallDetails) -> grpc.RpcMethodHandler | None:
        handler = self._registered.get(details.method)
        if handler is not None:
            return handler
        return next((h for g in self._generic if (h := g.service(details)) is not None), None)


class LocalContext:
    """The part of grpc.aio.ServicerContext the mesh's handlers and interceptors use."""

    def __init__(self, metadata: Metadata, deadline: float | None) -> None:
        self._metadata = metadata
        self._deadline = deadline
        self._code: grpc.StatusCode | None = None
        self._details = ""
        self._trailing: Metadata = ()
        self._initial: Metadata = ()
        self._cancelled = False
        self._done = False

    def invocation_metadata(self) -> Metadata:
        return self._metadata

    def peer(self) -> str:
        return PEER

    def time_remaining(self) -> float | None:
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - asyncio.get_running_loop().time())

    def cancelled(self) -> bool:
        return self._cancelled

    def done(self) -> bool:
        return self._done

    def code(self) -> grpc.StatusCode | None:
        return self._code

    def details(self) -> str:
        return self._details

    def set_code(self, code: grpc.StatusCode) -> None:
        self._code = code

    def set_details(self, details: str) -> None:
        self._details = details

    def trailing_metadata(self) -> Metadata:
        return self._trailing

    def set_trailing_metadata(self, metadata: Sequence[tuple[str, Any]]) -> None:
        self._trailing = tuple(metadata)

    async def send_initial_metadata(self, metadata: Sequence[tuple[str, Any]]) -> None:
        self._initial = tuple(metadata)

    async def abort(self, code: grpc.StatusCode, details: str = "",
                    trailing_metadata: Sequence[tuple[str, Any]] = ()) -> None:
        self._code, self._details = code, details
        if trailing_metadata:
            self._trailing = tuple(trailing_metadata)
        raise grpc.aio.AbortError(f"aborted with {code.name}")

    def error(self) -> grpc.aio.AioRpcError | None:
        """The call's outcome as the client would see it: None for OK."""
        if self._code is None or self._code is grpc.StatusCode.OK:
            return None
        return _rpc_error(self._code, self._details, self._trailing, self._initial)

    def finish(self, cancelled: bool = False) -> None:
        self._done = True
        self._cancelled = self._cancelled or cancelled


def _failure(exc: Exception, context: LocalContext, method: str) -> grpc.aio.AioRpcError:
    """What the caller of a call that raised `exc` sees (TimeoutError: its deadline passed)."""
    if isinstance(exc, TimeoutError):
        context.finish(cancelled=True)
        return _rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
    context.finish()
    if isinstance(exc, grpc.aio.AbortError):
        return context.error() or _rpc_error(grpc.StatusCode.UNKNOWN, "aborted")
    if isinstance(exc, grpc.aio.AioRpcError):
        return exc
    # An interceptor's own failure: what grpc.aio answers, logged here.
    log.error("unhandled error in %s", method, exc_info=exc)
    return _rpc_error(grpc.StatusCode.UNKNOWN, f"Unexpected {type(exc).__name__}")


def _rpc_error(code: grpc.StatusCode, details: str, trailing: Metadata = (),
               initial: Metadata = ()) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(*initial), grpc.aio.Metadata(*trailing), details)


class LocalChannel:
    """Unary and server-streaming calls to the handlers in `table`, through `interceptors` (the
    server's list: the first is the outermost)."""

    def __init__(self, table: HandlerTable, interceptors: Sequence[grpc.aio.ServerInterceptor]) -> None:
        self._table = table
        self._interceptors = tuple(interceptors)

    def unary_unary(self, method: str, request_serializer: Any = None, response_deserializer: Any = None,
                    _registered_method: bool = False) -> Callable[..., Awaitable[Any]]:
        return partial(self._unary, method)

    def unary_stream(self, method: str, request_serializer: Any = None, response_deserializer: Any = None,
                     _registered_method: bool = False) -> Callable[..., LocalStreamCall]:
        return partial(LocalStreamCall, self, method)

    def stream_unary(self, method: str, request_serializer: Any = None, response_deserializer: Any = None,
                     _registered_method: bool = False) -> Callable[..., Any]:
        return partial(_not_local, method)

    def stream_stream(self, method: str, request_serializer: Any = None, response_deserializer: Any = None,
                      _registered_method: bool = False) -> Callable[..., Any]:
        return partial(_not_local, method)

    async def close(self, grace: float | None = None) -> None:
        """Nothing to close: calls in flight belong to their callers."""

    async def handler(self, method: str, metadata: Metadata) -> grpc.RpcMethodHandler:
        """The handler for one call, wrapped by the interceptors as grpc.aio's server does it."""
        handler = await self._intercepted(iter(self._interceptors), _CallDetails(method, metadata))
        if handler is None:
            raise _rpc_error(grpc.StatusCode.UNIMPLEMENTED, "Method not found!")
        return handler

    async def _intercepted(self, rest: Any, details: _CallDetails) -> grpc.RpcMethodHandler | None:
        interceptor = next(rest, None)
        if interceptor is None:
            return self._table.lookup(details)
        return await interceptor.intercept_service(partial(self._intercepted, rest), details)

    async def _unary(self, method: str, request: Any, *, timeout: float | None = None,  # noqa: ASYNC109 (a stub's keyword)
                     metadata: Sequence[tuple[str, str]] | None = None, **_: Any) -> Any:
        context = LocalContext(_metadata(metadata), _deadline(timeout))

        async def serve() -> Any:
            handler = await self.handler(method, context.invocation_metadata())
            return await handler.unary_unary(request, context)

        task = _own_task(serve())
        try:
            async with asyncio.timeout(timeout):
                response = await task
        except asyncio.CancelledError:
            context.finish(cancelled=True)
            raise
        except Exception as exc:
            raise _failure(exc, context, method) from None
        context.finish()
        error = context.error()
        if error is not None:
            raise error
        return response


class LocalStreamCall:
    """One server-streaming call: iterate it for the responses (a failed call raises AioRpcError);
    `cancel()` stops the handler. The handler runs at most one message ahead of the reader, so a
    reader that lags gets the servicer's coalesced messages, as it would over HTTP/2; the call's
    end never waits for the reader."""

    def __init__(self, channel: LocalChannel, method: str, request: Any, *, timeout: float | None = None,
                 metadata: Sequence[tuple[str, str]] | None = None, **_: Any) -> None:
        self._channel = channel
        self._method = method
        self._request = request
        self._timeout = timeout
        self._context = LocalContext(_metadata(metadata), _deadline(timeout))
        self._handoff: asyncio.Queue[Any] = asyncio.Queue(maxsize=1)
        self._outcome: grpc.aio.AioRpcError | None = None
        self._cancel_requested = False
        self._task = _own_task(self._serve())
        self._responses: AsyncIterator[Any] | None = None

    async def _serve(self) -> None:
        context = self._context
        try:
            async with asyncio.timeout(self._timeout):
                handler = await self._channel.handler(self._method, context.invocation_metadata())
                async for response in direct_stream(handler.unary_stream)(self._request, context):
                    await self._handoff.put(response)
            self._outcome = context.error()
        except asyncio.CancelledError:
            context.finish(cancelled=True)
            raise
        except Exception as exc:
            self._outcome = _failure(exc, context, self._method)
        context.finish()
        if not self._handoff.full():  # wake a reader waiting for the next message
            self._handoff.put_nowait(_END)

    def __aiter__(self) -> AsyncIterator[Any]:
        # One iterator per call, as grpc.aio's: a second `async for` continues where the first stopped.
        if self._responses is None:
            self._responses = self._read_all()
        return self._responses

    async def _read_all(self) -> AsyncIterator[Any]:
        while not (self._handoff.empty() and self._task.done()):
            item = await self._handoff.get()
            if item is _END:
                break
            yield item
        if self.cancelled():
            raise asyncio.CancelledError  # what grpc.aio raises on reading a cancelled call
        if self._outcome is not None:
            raise self._outcome

    def cancel(self) -> bool:
        if self._task.done() or self._cancel_requested:
            return False
        self._cancel_requested = True
        self._task.cancel()
        if not self._handoff.full():  # a reader waiting for the next message sees the end
            self._handoff.put_nowait(_END)
        return True

    def done(self) -> bool:
        return self._task.done()

    def cancelled(self) -> bool:
        return self._cancel_requested or self._task.cancelled()


def _not_local(method: str, *args: Any, **kwargs: Any) -> Any:
    # A stub has a callable for every method; client-streaming ones are not called in-process.
    raise NotImplementedError(f"{method}: client-streaming calls are not served in-process")


def _own_task(coro: Any) -> asyncio.Task[Any]:
    """The handler's task, in a fresh context like a gRPC server's: nothing of the caller's context
    variables leaks in, nor out."""
    return asyncio.get_running_loop().create_task(coro, context=contextvars.Context())


def _deadline(timeout: float | None) -> float | None:
    return None if timeout is None else asyncio.get_running_loop().time() + timeout


def _metadata(metadata: Sequence[tuple[str, str]] | None) -> Metadata:
    """The caller's metadata, with its trace context when tracing is on (as the channels' client
    interceptors send it over the network)."""
    pairs = tuple((key.lower(), value) for key, value in metadata or ())
    if not tracing.enabled():
        return pairs
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return pairs + tuple(carrier.items())
