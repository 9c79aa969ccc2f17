"""One Chat turn of the inference service streamed as OpenAI `chat.completion.chunk` SSE.

Response headers wait for the first inference event, so a request that fails before generating
(unknown model, invalid value, overload) still gets its proper HTTP status and error body. After
that: a first chunk with `delta.role`, one chunk per token delta or tool-call event, a final chunk
with `finish_reason`, the `usage` chunk when `stream_options.include_usage`, then `data: [DONE]`.
A failure mid-stream is one `{"error": {...}}` event, and the stream ends (the OpenAI SDKs raise
it as an APIError). When the client goes away the handler is cancelled, and so is the gRPC call:
the inference service closes the backend request and the model stops generating.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import grpc
from aiohttp import web
from google.rpc import code_pb2, status_pb2

from llmmesh.gateway import errors, openai_request, openai_response
from llmmesh.gateway.errors import OpenAIError
from llmmesh.inference.v1 import inference_service_pb2 as pb

SSE_HEADERS = {"content-type": "text/event-stream", "cache-control": "no-cache", "x-accel-buffering": "no"}
# After the final event the server ends the stream at once (the request side is half-closed).
_DRAIN_S = 5.0


class ChatStream:
    def __init__(self, call: Any, params: openai_request.ChatParams) -> None:
        self._call = call
        self._events: AsyncIterator[pb.ChatResponse] = call.__aiter__()
        self._params = params
        self._param_of = errors.chat_param(params.max_tokens_param)
        self._chunks = openai_response.ChunkFactory(openai_response.completion_id(), openai_response.now(),
                                                    params.request.model, params.include_usage)
        self._finished = False

    async def _next(self) -> pb.ChatResponse | None:
        try:
            return await anext(self._events)
        except StopAsyncIteration:
            return None

    async def respond(self, request: web.Request) -> web.StreamResponse:
        """Stream the answer. Raises OpenAIError (no bytes sent yet) if it fails before the first event."""
        try:
            try:
                first = await self._next()
            except grpc.aio.AioRpcError as exc:
                raise errors.from_rpc_error(exc, self._param_of) from None
            if first is not None and first.WhichOneof("event") == "error":
                raise errors.from_status(first.error, self._param_of)
            resp = web.StreamResponse(headers=SSE_HEADERS)
            await resp.prepare(request)
            await self._send(resp, self._chunks.chunk({"role": "assistant", "content": ""}))
            await self._relay(resp, first)
            await resp.write_eof()
            if self._finished:
                await self._drain()
            return resp
        finally:
            if not self._finished and not self._call.done():
                self._call.cancel()

    async def _relay(self, resp: web.StreamResponse, event: pb.ChatResponse | None) -> None:
        tool_index = 0
        try:
            while event is not None:
                kind = event.WhichOneof("event")
                if kind == "delta" and event.delta.text:
                    await self._send(resp, self._chunks.chunk({"content": event.delta.text}))
                elif kind == "tool_calls":
                    calls = openai_response.tool_calls(event.tool_calls.tool_calls, first_index=tool_index)
                    tool_index += len(calls)
                    await self._send(resp, self._chunks.chunk({"tool_calls": calls}))
                elif kind == "done":
                    finish = openai_response.finish_reason(event.done.done_reason, tool_index > 0)
                    await self._send(resp, self._chunks.chunk({}, finish))
                    if self._params.include_usage:
                        await self._send(resp, self._chunks.usage_chunk(event.done))
                    await resp.write(b"data: [DONE]\n\n")
                    self._finished = True
                    return
                elif kind == "error":
                    await self._send(resp, errors.from_status(event.error, self._param_of).body())
                    return
                event = await self._next()
            lost = status_pb2.Status(code=code_pb2.UNAVAILABLE, message="inference stream ended without a final event")
            await self._send(resp, errors.from_status(lost).body())
        except grpc.aio.AioRpcError as exc:
            failure: OpenAIError = errors.from_rpc_error(exc, self._param_of)
            await self._send(resp, failure.body())

    async def _drain(self) -> None:
        """Let the call end on its own (no CANCELLED in the service's books); cancel if it lingers."""
        try:
            async with asyncio.timeout(_DRAIN_S):
                while await self._next() is not None:
                    pass
        except (TimeoutError, grpc.aio.AioRpcError):
            self._call.cancel()

    @staticmethod
    async def _send(resp: web.StreamResponse, data: dict[str, Any]) -> None:
        await resp.write(f"data: {json.dumps(data, separators=(',', ':'))}\n\n".encode())
