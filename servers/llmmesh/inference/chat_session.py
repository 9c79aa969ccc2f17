"""Reading a bidirectional chat stream while a generation runs.

The client may send a STOP control at any moment; it must end the current generation (closing
its backend request) without ending the stream. A reader task drains the request stream: STOP
sets the current turn's stop event, everything else queues for the main loop in order.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, TypeVar

from llmmesh.inference.v1 import inference_service_pb2 as pb

T = TypeVar("T")


class Stopped:
    """Emitted instead of further events when a STOP control ended the generation."""


_END = object()


class ChatSession:
    def __init__(self, requests: AsyncIterator[pb.ChatRequest], max_queued: int = 32) -> None:
        self._requests = requests
        # Bounded: a client flooding turns is paused by gRPC flow control, not buffered here.
        self._queue: asyncio.Queue[Any] = asyncio.Queue(max_queued)
        self._stop = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ChatSession:
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)

    async def _read(self) -> None:
        try:
            async for req in self._requests:
                if req.WhichOneof("action") == "control" and req.control.action == pb.CHAT_CONTROL_ACTION_STOP:
                    self._stop.set()
                else:
                    await self._queue.put(req)
        finally:
            await self._queue.put(_END)

    async def requests(self) -> AsyncIterator[pb.ChatRequest]:
        while (req := await self._queue.get()) is not _END:
            self._stop.clear()  # a STOP only applies to the generation that was running
            yield req

    async def until_stopped(self, events: AsyncIterator[T]) -> AsyncIterator[T | Stopped]:
        it = aiter(events)
        stop_wait = asyncio.ensure_future(self._stop.wait())
        try:
            while True:
                nxt = asyncio.ensure_future(anext(it))
                await asyncio.wait({nxt, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
                if not nxt.done():
                    nxt.cancel()  # unwinds the generation, closing its backend request
                    await asyncio.gather(nxt, return_exceptions=True)
                    yield Stopped()
                    return
                try:
                    yield nxt.result()
                except StopAsyncIteration:
                    return
        finally:
            stop_wait.cancel()
            await it.aclose() if hasattr(it, "aclose") else None
