"""llmmesh.framework.batching: one item at a time to a consumer that keeps up, everything queued
at once to one that lags; order kept, failures after what came before them, the source unwound
when the consumer stops."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from llmmesh.framework.batching import batches


async def _paced(n: int, gate: asyncio.Event | None = None) -> AsyncIterator[int]:
    for i in range(n):
        if gate is not None:
            await gate.wait()
        await asyncio.sleep(0)
        yield i


async def test_a_consumer_that_keeps_up_gets_one_item_per_batch() -> None:
    got = [batch async for batch in batches(_paced(5))]
    assert got == [[0], [1], [2], [3], [4]]


async def test_a_lagging_consumer_gets_what_queued_meanwhile_in_order() -> None:
    got: list[list[int]] = []
    async for batch in batches(_paced(50)):
        got.append(batch)
        await asyncio.sleep(0.01)  # the writer is slow: everything produced meanwhile is one batch
    assert [i for b in got for i in b] == list(range(50))
    assert len(got) < 10
    assert got[0] == [0]  # the first item went out at once


async def test_the_buffer_is_bounded() -> None:
    produced = 0

    async def counting() -> AsyncIterator[int]:
        nonlocal produced
        for i in range(100):
            produced += 1
            yield i

    it = batches(counting(), limit=8)
    first = await anext(it)
    await asyncio.sleep(0.05)  # a stalled consumer: the pump waits at the bound
    assert produced <= len(first) + 8 + 1
    rest = [i async for b in it for i in b]
    assert first + rest == list(range(100))


async def test_the_buffer_is_bounded_in_bytes_too() -> None:
    async def large() -> AsyncIterator[str]:
        for i in range(40):
            yield str(i % 10) * 1000  # 1 kB tokens (a JSON document per delta, say)

    got: list[list[str]] = []
    async for batch in batches(large(), size=len, max_bytes=4000):
        got.append(batch)
        await asyncio.sleep(0.01)  # a lagging consumer: batches fill up to the bound, not past it
    assert all(sum(map(len, b)) <= 4000 for b in got)
    assert [s for b in got for s in b] == [str(i % 10) * 1000 for i in range(40)]


async def test_a_failure_comes_after_the_items_before_it() -> None:
    async def failing() -> AsyncIterator[int]:
        yield 1
        yield 2
        raise ValueError("backend lost")

    got: list[int] = []
    with pytest.raises(ValueError, match="backend lost"):
        async for batch in batches(failing()):
            got.extend(batch)
            await asyncio.sleep(0.01)
    assert got == [1, 2]


async def test_stopping_early_unwinds_the_source() -> None:
    unwound = asyncio.Event()

    async def endless() -> AsyncIterator[int]:
        try:
            i = 0
            while True:
                await asyncio.sleep(0.001)
                yield i
                i += 1
        finally:
            unwound.set()

    async def consume() -> None:
        async for _ in batches(endless()):
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert unwound.is_set()

    it = batches(endless())
    unwound.clear()
    await anext(it)
    await it.aclose()
    assert unwound.is_set()
