"""Run several async event sources concurrently and relay their items as they come.

Pattern runs that fan out (both orders of a pairwise judgement, a jury's panel, parallel agents)
need the items of every branch as soon as they are produced, plus two guarantees: a failure in
one branch cancels the others and propagates unchanged (not wrapped in an ExceptionGroup, so the
error interceptor still maps it), and closing or cancelling the merged iterator cancels every
branch, which closes their model calls.

Why not asyncio.TaskGroup here: this is an async generator that yields while its branches run.
A TaskGroup whose child fails cancels the *parent task*, and while the generator is suspended
at a `yield` that task is running the consumer's code, which would receive a stray
CancelledError. Plain tasks that are always cancelled and awaited in `finally` give the same
structured lifetime without that hazard.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class _Ended:
    error: Exception | None


async def fan_in(*sources: AsyncIterator[T]) -> AsyncIterator[T]:
    """Items of all `sources` in arrival order; ends when all have ended."""
    # Unbounded: the branches are model calls bounded by their token limits, and the consumer
    # relays items as fast as the client reads them.
    queue: asyncio.Queue[T | _Ended] = asyncio.Queue()

    async def pump(source: AsyncIterator[T]) -> None:
        try:
            async with aclosing(source):  # type: ignore[type-var]
                async for item in source:
                    queue.put_nowait(item)
        except Exception as exc:
            queue.put_nowait(_Ended(exc))
        else:
            queue.put_nowait(_Ended(None))

    tasks = [asyncio.create_task(pump(s)) for s in sources]
    try:
        running = len(tasks)
        while running:
            item = await queue.get()
            if isinstance(item, _Ended):
                running -= 1
                if item.error is not None:
                    raise item.error
            else:
                yield item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
