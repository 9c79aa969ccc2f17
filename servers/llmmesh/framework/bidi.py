"""Reading a bidirectional request stream while the response stream is being produced.

A reader task drains the client's messages as they arrive. Messages the `is_interrupt` predicate
selects (a chat STOP, a pattern Cancel) take effect immediately by setting an event that
`until_interrupted` watches; every other message is queued, in order, for the handler (the next
chat turn, a plan decision, a human turn). The queue is bounded, so a client that floods the
stream is slowed by gRPC flow control instead of being buffered without limit.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Any, Generic, TypeVar

Req = TypeVar("Req")
T = TypeVar("T")


class Interrupted:
    """Yielded by `until_interrupted` instead of further events once an interrupt arrived."""


_END = object()
_PUMP_END = object()


class BidiSession(Generic[Req]):
    def __init__(self, requests: AsyncIterator[Req], is_interrupt: Callable[[Req], bool], max_queued: int = 32) -> None:
        self._requests = requests
        self._is_interrupt = is_interrupt
        self._queue: asyncio.Queue[Any] = asyncio.Queue(max_queued)
        self.interrupt = asyncio.Event()
        self.last_interrupt: Req | None = None
        self._reader: asyncio.Task[None] | None = None
        # Called on every interrupt: cancels the running `until_interrupted` source at once.
        self._listeners: list[Callable[[], Any]] = []

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
                    for notify in list(self._listeners):
                        notify()
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
        cancelled (unwinding whatever it awaits, e.g. closing a backend request).

        The source runs in ONE pump task for its whole life, so context variables it sets (a usage
        meter, say) hold across its yields, and no task is created per event. The hand-over
        queue holds one item: a slow consumer slows the source instead of buffering it.
        """
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=1)
        failure: list[BaseException] = []
        cancelled = False

        async def pump() -> None:
            nonlocal cancelled
            try:
                async for event in events:
                    await queue.put(event)
            except asyncio.CancelledError:
                cancelled = True
            except BaseException as exc:  # handed to the consumer and raised there
                failure.append(exc)
            finally:
                aclose = getattr(events, "aclose", None)
                if aclose is not None:
                    await aclose()  # `async for` does not close a source it was cancelled out of
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(_PUMP_END)  # wakes a consumer blocked on an empty queue

        def pump_done(task: asyncio.Task[None]) -> None:
            # Also runs when the pump was cancelled before it ever started (an interrupt that came
            # first: a Cancel sent right behind the request). Its `finally` never ran then, so the
            # consumer must be woken, and told it was interrupted, from here; otherwise it would
            # wait on the empty queue until the RPC's deadline (or forever without one).
            nonlocal cancelled
            if task.cancelled():
                cancelled = True
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(_PUMP_END)

        pump_task = asyncio.create_task(pump())
        pump_task.add_done_callback(pump_done)
        self._listeners.append(pump_task.cancel)
        if self.interrupt.is_set():
            pump_task.cancel()
        try:
            while True:
                item = _PUMP_END if queue.empty() and pump_task.done() else await queue.get()
                if item is _PUMP_END:
                    if failure:
                        raise failure[0]
                    if cancelled:
                        yield Interrupted()
                    return
                yield item
        finally:
            self._listeners.remove(pump_task.cancel)
            pump_task.cancel()
            await asyncio.gather(pump_task, return_exceptions=True)
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()  # a source the pump never started; a no-op for one it closed
