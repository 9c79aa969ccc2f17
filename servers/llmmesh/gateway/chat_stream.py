"""One inference stream (a CompleteChatStream or a Generate call) relayed to an HTTP client, framed by the
front door's `Framer`: OpenAI `chat.completion.chunk` SSE, or Ollama's NDJSON.

Response headers wait for the first inference event past the admission queue (`queued` updates are
not relayed), so a request that fails before generating (unknown model, invalid value, overload,
refused or timed out in the queue) still gets its proper HTTP status and error body. After
that: the framer's opening frames, one frame per token delta or tool-call event, its final frames
on `done`. A failure mid-stream is one error frame, and the stream ends (the OpenAI SDKs raise it
as an APIError, the Ollama client as a ResponseError). When the client goes away the handler is
cancelled, and so is the gRPC call: the inference service closes the backend request and the
model stops generating.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any, Protocol

import grpc
from aiohttp import web
from google.rpc import code_pb2, status_pb2

from llmmesh.framework.batching import batches
from llmmesh.gateway import errors
from llmmesh.gateway.errors import ApiError
from llmmesh.gateway.upstream import drain
from llmmesh.inference.v1 import inference_service_pb2 as pb

# ChatResponse or GenerateResponse: both carry delta / done / error (and queued) in `event`.
InferenceEvent = pb.ChatResponse | pb.GenerateResponse


class Framer(Protocol):
    """How one front door writes an inference stream."""

    @property
    def headers(self) -> Mapping[str, str]: ...

    def start(self) -> Iterable[bytes]: ...

    def delta(self, text: str) -> Iterable[bytes]: ...

    def tool_calls(self, calls: Sequence[pb.ToolCall]) -> Iterable[bytes]: ...

    def done(self, done: pb.GenerationDone) -> Iterable[bytes]: ...

    def error(self, error: ApiError) -> bytes: ...


class ChatStream:
    def __init__(self, call: Any, param_of: errors.ParamMapper = errors.identity) -> None:
        self._call = call
        self._events: AsyncIterator[InferenceEvent] = call.__aiter__()
        self._param_of = param_of
        self._finished = False

    async def _next(self) -> InferenceEvent | None:
        try:
            return await anext(self._events)
        except StopAsyncIteration:
            return None

    async def _first(self) -> InferenceEvent | None:
        """The first event past the queue; raises ApiError (no bytes sent yet) if the call fails
        before it. `queued` updates are skipped, streamed or not: the OpenAI and Ollama APIs have no
        such event, and the headers wait for the slot, so a refusal from the queue (429) or its
        deadline still gets its own HTTP status."""
        try:
            first = await self._next()
            while first is not None and first.WhichOneof("event") == "queued":
                first = await self._next()
        except grpc.aio.AioRpcError as exc:
            raise errors.from_rpc_error(exc, self._param_of) from None
        if first is not None and first.WhichOneof("event") == "error":
            raise errors.from_status(first.error, self._param_of)
        return first

    async def respond(self, request: web.Request, framer: Framer) -> web.StreamResponse:
        """Stream the answer. Raises ApiError (no bytes sent yet) if it fails before the first event."""
        try:
            first = await self._first()
            resp = web.StreamResponse(headers=framer.headers)
            await resp.prepare(request)
            # The headers, the opening frames and the first event leave in one write (one packet
            # for Envoy to forward): the first token is what the client waits for.
            if first is None:
                frames, ended = [framer.error(errors.from_status(_lost()))], True
            else:
                frames, ended = self._frames(framer, [first])
            opening = b"".join([*framer.start(), *frames])
            if ended:
                await resp.write_eof(opening)
            else:
                await resp.write(opening)
                await self._relay(resp, framer)
            if self._finished:
                await drain(self._call)
            return resp
        finally:
            self._cancel_unless_finished()

    async def collect(self) -> tuple[str, pb.GenerationDone]:
        """The whole answer's text and its `done`, for a client that asked for no stream. Raises
        ApiError if the call fails at any point."""
        try:
            event, text = await self._first(), []
            while event is not None:
                kind = event.WhichOneof("event")
                if kind == "delta":
                    text.append(event.delta.text)
                elif kind == "done":
                    self._finished = True
                    await drain(self._call)
                    return "".join(text), event.done
                elif kind == "error":
                    raise errors.from_status(event.error, self._param_of)
                event = await self._next()
            raise errors.from_status(_lost())
        except grpc.aio.AioRpcError as exc:
            raise errors.from_rpc_error(exc, self._param_of) from None
        finally:
            self._cancel_unless_finished()

    def _cancel_unless_finished(self) -> None:
        if not self._finished and not self._call.done():
            self._call.cancel()

    async def _relay(self, resp: web.StreamResponse, framer: Framer) -> None:
        """The events after the first, to the end of the response. Every event queued up while the
        client was being written to goes out as one write, its consecutive token deltas as one frame
        (llmmesh.framework.batching): a reader that keeps up still gets each token at once. The
        final frames and the end of the body leave in one write: a client that hangs up on the
        final frame has the whole response by then."""
        try:
            async with contextlib.aclosing(batches(self._until_final())) as stream:
                async for batch in stream:
                    frames, ended = self._frames(framer, batch)
                    if ended:
                        await resp.write_eof(b"".join(frames))
                        return
                    if frames:
                        await resp.write(b"".join(frames))
            await resp.write_eof(framer.error(errors.from_status(_lost())))
        except grpc.aio.AioRpcError as exc:
            await resp.write_eof(framer.error(errors.from_rpc_error(exc, self._param_of)))

    async def _until_final(self) -> AsyncIterator[InferenceEvent]:
        """The events up to the final one (done or error), read no further: `drain` lets the call
        end on its own after it."""
        event = await self._next()
        while event is not None:
            yield event
            if event.WhichOneof("event") in ("done", "error"):
                return
            event = await self._next()

    def _frames(self, framer: Framer, batch: list[InferenceEvent]) -> tuple[list[bytes], bool]:
        """The frames of a batch of events, and whether it held the final one."""
        frames: list[bytes] = []
        texts: list[str] = []
        for event in batch:
            kind = event.WhichOneof("event")
            if kind == "delta":
                if event.delta.text:
                    texts.append(event.delta.text)
                continue
            if texts:
                frames.extend(framer.delta("".join(texts)))
                texts = []
            if kind == "tool_calls":
                frames.extend(framer.tool_calls(event.tool_calls.tool_calls))
            elif kind == "done":
                frames.extend(framer.done(event.done))
                self._finished = True
                return frames, True
            elif kind == "error":
                frames.append(framer.error(errors.from_status(event.error, self._param_of)))
                return frames, True
        if texts:
            frames.extend(framer.delta("".join(texts)))
        return frames, False


def _lost() -> status_pb2.Status:
    return status_pb2.Status(code=code_pb2.UNAVAILABLE, message="inference stream ended without a final event")
