"""The one place exceptions become gRPC statuses (innermost interceptor).

Unary RPCs, and streams that fail before their first message: the exception is mapped
(llmmesh.framework.errors.to_status) and the call aborts with rich details in
`grpc-status-details-bin` (over REST: the matching HTTP status and a JSON google.rpc.Status).
Streams that fail later, whose response has an `error` event of type google.rpc.Status, first get
that event — over HTTP/1.1 SSE the only way a client sees a mid-stream failure — then the status.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from functools import cache
from typing import Any

import grpc
from google.protobuf import descriptor_pool, message_factory
from google.rpc import status_pb2
from grpc_status import rpc_status

from llmmesh.framework import request_context
from llmmesh.framework.errors import MeshError, to_status
from llmmesh.framework.interceptors.base import CallInfo, ShapeInterceptor, StreamInvoke, UnaryInvoke

log = logging.getLogger("llmmesh.errors")


async def abort(context: grpc.aio.ServicerContext, status: status_pb2.Status) -> None:
    """End the RPC with `status`, its details carried as grpc-status-details-bin. Trailing metadata
    the handler set (a failed run's id) is sent with it."""
    rich = rpc_status.to_status(status)
    kept = tuple(context.trailing_metadata() or ())
    await context.abort(rich.code, rich.details, kept + tuple(rich.trailing_metadata))


def status_for(exc: BaseException, call: CallInfo) -> status_pb2.Status:
    if not isinstance(exc, MeshError | NotImplementedError):
        # The trace stays in our log; the client gets only the request id.
        log.error("unhandled error in %s", call.path, exc_info=exc)
    return to_status(exc, request_context.request_id.get())


@cache
def error_event_class(path: str) -> type | None:
    """The response message class of a streaming method if it has an `error` Status event."""
    try:
        method = descriptor_pool.Default().FindMethodByName(path.lstrip("/").replace("/", "."))
    except KeyError:
        return None
    field = method.output_type.fields_by_name.get("error")
    if field is None or field.message_type is None or field.message_type.full_name != "google.rpc.Status":
        return None
    return message_factory.GetMessageClass(method.output_type)


class ErrorInterceptor(ShapeInterceptor):
    async def unary(self, call: CallInfo, invoke: UnaryInvoke) -> Any:
        try:
            return await invoke()
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as exc:
            await abort(call.context, status_for(exc, call))

    async def stream(self, call: CallInfo, invoke: StreamInvoke) -> AsyncIterator[Any]:
        sent = False
        try:
            async for item in invoke():
                sent = True
                yield item
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as exc:
            status = status_for(exc, call)
            if call.context.cancelled() or call.context.done():
                # Nobody to tell (client gone, deadline passed); writing now is unsafe in grpc.aio.
                return
            event_cls = error_event_class(call.path)
            # Before the first message the status alone is explicit — and over REST it becomes the
            # HTTP status (400, 404, 429, …). After it, headers are gone: only an event can tell.
            if sent and event_cls is not None:
                yield event_cls(error=status)
            await abort(call.context, status)
