"""The sync flavour: the async client driven from a private event-loop thread.

Why this design: the async client is the one implementation of the surface (request building,
deadlines, metadata, error mapping, stream and session semantics). A sync facade class is a list
of one-line descriptors derived from the async methods:

    class Judge(Facade[AsyncJudge]):
        evaluate = blocking(AsyncJudge.evaluate)                           # awaitable -> value
        evaluate_stream = wrapping(AsyncJudge.evaluate_stream, RunStream)  # async object -> sync twin
        list_criteria = blocking(AsyncJudge.list_criteria)

    class Inference(Facade[AsyncInference]):
        generate = iterating(AsyncInference.generate)                     # async iterator -> iterator

The descriptors are typed with ParamSpec, so each sync method has exactly the async method's
parameters and documentation, with `Awaitable[R]` turned into `R` and `AsyncIterator[T]` into
`Iterator[T]`. Nothing is written twice, and the two flavours cannot drift apart. The cost is
one daemon thread per sync client and a thread hop per message: microseconds, against model
tokens that take milliseconds.

The async methods are plain functions that build (and check) the request at once and return an
awaitable or async iterator; only awaiting it does I/O. The sync facade calls them on the loop
thread, since grpc.aio objects belong to the loop that created them.

Alternatives considered: (1) one table of method specs feeding both a grpc sync channel and a
grpc.aio channel: two transports whose bidi-stream, cancellation and error semantics differ,
and the keyword signatures would still have to be written per flavour or lost to `**kwargs`;
(2) building methods from the descriptors at runtime: no typed signatures for editors.

Interrupts: waiting for a result in the calling thread is interruptible (Ctrl-C). A blocking
call that is interrupted cancels its RPC. An interrupted `next()` on a stream leaves the pending
read in place, so the caller may decide (e.g. send a chat STOP) and then keep iterating without
losing an event.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")
A = TypeVar("A")
S = TypeVar("S")

_END = object()


class LoopThread:
    """An event loop running forever in a daemon thread, owned by one sync client."""

    def __init__(self, name: str = "llmmesh-client") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the loop and wait. If the wait is interrupted, the coroutine is cancelled."""
        future = self.submit(coro)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    def call(self, fn: Callable[[], T]) -> T:
        """Run a plain function on the loop thread (anything that may touch grpc.aio objects)."""

        async def invoke() -> T:
            return fn()

        return self.run(invoke())

    def close(self) -> None:
        if self.loop.is_closed():
            return
        if self._thread.is_alive():
            self.submit(_cancel_all()).result(timeout=10)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)
        self.loop.close()


async def _cancel_all() -> None:
    current = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.get_running_loop().shutdown_asyncgens()


class SyncIterator(Iterator[T]):
    """An async iterator consumed from another thread, one `next()` at a time."""

    def __init__(self, runner: LoopThread, source: AsyncIterator[T]) -> None:
        self._runner = runner
        self._source = source
        self._pending: concurrent.futures.Future[Any] | None = None
        self._task: asyncio.Task[Any] | None = None
        self._done = False

    def __iter__(self) -> SyncIterator[T]:
        return self

    async def _next(self) -> Any:
        self._task = asyncio.current_task()
        try:
            return await anext(self._source)
        except StopAsyncIteration:
            return _END

    def __next__(self) -> T:
        if self._done:
            raise StopIteration
        if self._pending is None:
            self._pending = self._runner.submit(self._next())
        try:
            value = self._pending.result()
        except (KeyboardInterrupt, SystemExit):
            raise  # the read stays pending; calling next() again picks it up
        except BaseException:
            self._pending, self._done = None, True
            raise
        self._pending = None
        if value is _END:
            self._done = True
            raise StopIteration
        return value

    def close(self) -> None:
        """Stop early: the underlying async iterator is closed (which cancels its call)."""
        if self._done:
            return
        self._done = True
        self._pending = None
        aclose = getattr(self._source, "aclose", None)

        async def shutdown() -> None:
            # Look for a running read here, on the loop: from the calling thread a read that was
            # just submitted may already be running before its future was even stored.
            reading = self._task
            if reading is not None and not reading.done():
                reading.cancel()  # unwinds the source at its await point (its finally cancels the RPC)
                await asyncio.gather(reading, return_exceptions=True)
            if aclose is not None:
                await aclose()

        if not self._runner.loop.is_closed():
            self._runner.run(shutdown())

    def __enter__(self) -> SyncIterator[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Facade(Generic[A]):
    """A sync object in front of an async one (`_inner`), both driven by `_runner`."""

    def __init__(self, inner: A, runner: LoopThread) -> None:
        self._inner = inner
        self._runner = runner


def _bind(obj: Facade[Any], fn: Callable[..., Any], wrapper: Callable[..., Any]) -> Callable[..., Any]:
    return functools.update_wrapper(functools.partial(wrapper, obj), fn)


class blocking(Generic[P, R]):
    """Expose `def method(self, ...) -> Awaitable[R]` as `def method(...) -> R`."""

    def __init__(self, fn: Callable[Concatenate[Any, P], Awaitable[R]]) -> None:
        self._fn = fn

    @overload
    def __get__(self, obj: None, owner: type) -> blocking[P, R]: ...
    @overload
    def __get__(self, obj: Facade[Any], owner: type) -> Callable[P, R]: ...
    def __get__(self, obj: Facade[Any] | None, owner: type) -> Any:
        if obj is None:
            return self
        fn = self._fn

        def call(target: Facade[Any], *args: Any, **kwargs: Any) -> Any:
            async def invoke() -> Any:
                return await fn(target._inner, *args, **kwargs)

            return target._runner.run(invoke())

        return _bind(obj, fn, call)


class iterating(Generic[P, T]):
    """Expose `def method(self, ...) -> AsyncIterator[T]` as `def method(...) -> Iterator[T]`."""

    def __init__(self, fn: Callable[Concatenate[Any, P], AsyncIterator[T]]) -> None:
        self._fn = fn

    @overload
    def __get__(self, obj: None, owner: type) -> iterating[P, T]: ...
    @overload
    def __get__(self, obj: Facade[Any], owner: type) -> Callable[P, SyncIterator[T]]: ...
    def __get__(self, obj: Facade[Any] | None, owner: type) -> Any:
        if obj is None:
            return self
        fn = self._fn

        def call(target: Facade[Any], *args: Any, **kwargs: Any) -> SyncIterator[Any]:
            source = target._runner.call(lambda: fn(target._inner, *args, **kwargs))
            return SyncIterator(target._runner, source)

        return _bind(obj, fn, call)


class wrapping(Generic[P, A, S]):
    """Expose `def method(self, ...) -> AsyncThing` as `def method(...) -> SyncThing`, where
    `SyncThing(async_thing, runner)` is the thing's own facade."""

    def __init__(self, fn: Callable[Concatenate[Any, P], A], facade: Callable[[A, LoopThread], S]) -> None:
        self._fn = fn
        self._facade = facade

    @overload
    def __get__(self, obj: None, owner: type) -> wrapping[P, A, S]: ...
    @overload
    def __get__(self, obj: Facade[Any], owner: type) -> Callable[P, S]: ...
    def __get__(self, obj: Facade[Any] | None, owner: type) -> Any:
        if obj is None:
            return self
        fn, facade = self._fn, self._facade

        def call(target: Facade[Any], *args: Any, **kwargs: Any) -> Any:
            inner = target._runner.call(lambda: fn(target._inner, *args, **kwargs))
            return facade(inner, target._runner)

        return _bind(obj, fn, call)
