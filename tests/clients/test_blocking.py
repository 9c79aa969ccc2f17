"""The sync flavour's machinery: a private loop thread, and streams read across threads."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import AsyncIterator
from types import FrameType

import pytest

from llmmesh_client.blocking import LoopThread, SyncIterator


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def test_an_interrupted_next_keeps_its_read_and_resumes_without_losing_an_event() -> None:
    # pytest (and each xdist worker) runs tests in the main thread, where signals are delivered.
    assert threading.current_thread() is threading.main_thread()
    runner = LoopThread()
    release = asyncio.Event()

    async def source() -> AsyncIterator[int]:
        yield 1
        await release.wait()  # blocks until the test has been interrupted
        yield 2

    events = SyncIterator(runner, runner.call(source))
    try:
        assert next(events) == 1
        previous = signal.signal(signal.SIGUSR1, _interrupt)
        try:
            threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGUSR1)).start()
            with pytest.raises(KeyboardInterrupt):
                next(events)  # blocked in the wait when the signal lands
        finally:
            signal.signal(signal.SIGUSR1, previous)
        runner.loop.call_soon_threadsafe(release.set)
        assert next(events) == 2  # the pending read, not a second one racing it
        assert list(events) == []
    finally:
        runner.close()


def test_closing_a_stream_mid_read_unwinds_its_source() -> None:
    runner = LoopThread()
    unwound = threading.Event()
    started = threading.Event()

    async def source() -> AsyncIterator[int]:
        try:
            yield 1
            started.set()
            await asyncio.Event().wait()  # never set: only cancellation gets out
            yield 2
        finally:
            unwound.set()

    events = SyncIterator(runner, runner.call(source))
    try:
        assert next(events) == 1
        outcome: list[BaseException] = []

        def read() -> None:
            try:
                next(events)
            except BaseException as exc:  # the read ends, one way or another
                outcome.append(exc)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        assert started.wait(10)
        events.close()
        assert unwound.wait(10)
        reader.join(10)
        assert not reader.is_alive() and len(outcome) == 1
        assert list(events) == []
    finally:
        runner.close()


def test_the_loop_thread_runs_coroutines_and_closes_cleanly() -> None:
    runner = LoopThread()

    async def add(a: int, b: int) -> int:
        await asyncio.sleep(0)
        return a + b

    async def forever() -> None:
        await asyncio.Event().wait()

    assert runner.run(add(2, 3)) == 5
    pending = runner.submit(forever())
    runner.close()  # cancels what is still running, stops the loop, joins the thread
    assert pending.cancelled() and runner.loop.is_closed()
