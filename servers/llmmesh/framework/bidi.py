"""Reading a bidirectional request stream while the response stream is being produced.

A reader task drains the client's messages as they arrive. Messages the `is_interrupt` predicate
selects (a chat STOP, a pattern Cancel) take effect immediately by setting an event that
`until_interrupted` watches; every other message is queued, in order, for the handler (the next
chat turn, a plan decision, a human turn). The queue is bounded, so a client that floods the
stream is slowed by gRPC flow control instead of being buffered without limit.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Any, Generic, TypeVar

Req = TypeVar("Req")
T = TypeVar("T")


class Interrupted:
    """Yielded by `until_interrupted` instead of further events once an interrupt arrived."""


_END = object()


class BidiSession(Generic[Req]):
    def __init__(self, requests: AsyncIterator[Req], is_interrupt: Callable[[Req], bool], max_queued: int = 32) -> None:
        self._requests = requests
        self._is_interrupt = is_interrupt
        self._queue: asyncio.Queue[Any] = asyncio.Queue(max_queued)
        self.interrupt = asyncio.Event()
        self.last_interrupt: Req | None = None
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> BidiSession[Req]:
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)

    async def _read(self) -> None:
        try:
            async for req in self._requests:
                if self._is_interrupt(req):
                    self.last_interrupt = req
                    self.interrupt.set()
                else:
                    await self._queue.put(req)
        finally:
            await self._queue.put(_END)

    async def next(self) -> Req | None:
        """The next queued message, or None once the client half-closed the stream."""
        req = await self._queue.get()
        if req is _END:
            await self._queue.put(_END)  # stay at end for later callers
            return None
        return req

    async def requests(self) -> AsyncIterator[Req]:
        """Queued messages in order; each one clears a stale interrupt first."""
        while (req := await self.next()) is not None:
            self.interrupt.clear()
            yield req

    async def until_interrupted(self, events: AsyncIterator[T]) -> AsyncIterator[T | Interrupted]:
        """Relay `events` until they end or an interrupt arrives; on interrupt the source is
        cancelled (unwinding whatever it awaits, e.g. closing a backend request)."""
        it = aiter(events)
        interrupt_wait = asyncio.ensure_future(self.interrupt.wait())
        nxt: asyncio.Future[T] | None = None
        try:
            while True:
                nxt = asyncio.ensure_future(anext(it))
                await asyncio.wait({nxt, interrupt_wait}, return_when=asyncio.FIRST_COMPLETED)
                if not nxt.done():
                    nxt.cancel()
                    await asyncio.gather(nxt, return_exceptions=True)
                    yield Interrupted()
                    return
                try:
                    yield nxt.result()
                except StopAsyncIteration:
                    return
        finally:
            interrupt_wait.cancel()
            if nxt is not None and not nxt.done():
                # We were cancelled mid-step (client gone, deadline): unwind the source first;
                # closing a generator that is still running in the step task is an error.
                nxt.cancel()
                await asyncio.gather(nxt, return_exceptions=True)
            aclose = getattr(it, "aclose", None)
            if aclose is not None:
                await aclose()
