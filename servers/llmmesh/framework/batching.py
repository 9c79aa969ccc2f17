"""Hand a stream over in batches: whatever has arrived while the consumer was busy, at once.

A relay that writes one message per token pays its per-message costs (protobuf encoding, a gRPC
or HTTP write, framing) once per token even when its reader lags behind. `batches` runs the source
in ONE pump task and gives the consumer everything that arrived since it last asked: a consumer
that keeps up gets batches of one, with no added wait, and a lagging one (a slow client, a
saturated process) gets fewer, larger batches, so the work per token falls as the load rises.

The buffer is bounded, in items (`limit`) and, with a `size` of each item, in bytes (`max_bytes`):
past either the pump waits, so a stalled consumer slows the source
instead of buffering it without limit. Items that arrived before a failure are handed over before
the failure is raised. When the consumer stops early (cancelled, closed), the pump is cancelled and
awaited, which unwinds the source (e.g. closes a backend request).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

T = TypeVar("T")


# Per-message costs are amortised long before this many items or bytes; bounding the batch also
# bounds what one consumer's pump holds (tokens can be large: a whole JSON document per delta).
LIMIT = 128
MAX_BYTES = 64 * 1024


async def batches(source: AsyncIterator[T], limit: int = LIMIT, size: Callable[[T], int] | None = None,
                  max_bytes: int = MAX_BYTES) -> AsyncIterator[list[T]]:
    buffer: list[T] = []
    held = 0  # bytes in the buffer, by `size`
    arrived = asyncio.Event()  # set while the buffer holds something, or the pump ended
    room = asyncio.Event()  # set while the buffer is below `limit`
    room.set()
    failure: list[BaseException] = []
    ended = False

    async def pump() -> None:
        nonlocal ended, held
        try:
            async for item in source:
                buffer.append(item)
                held += size(item) if size is not None else 0
                arrived.set()
                if len(buffer) >= limit or held >= max_bytes:
                    room.clear()
                    await room.wait()
        except BaseException as exc:  # handed to the consumer, raised there after what came before it
            failure.append(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            try:
                aclose = getattr(source, "aclose", None)
                if aclose is not None:
                    await aclose()  # `async for` does not close a source it was cancelled out of
            finally:
                ended = True
                arrived.set()

    task = asyncio.create_task(pump())
    try:
        while True:
            await arrived.wait()
            if buffer:
                batch = buffer[:]
                buffer.clear()
                held = 0
                room.set()
                if not ended:
                    arrived.clear()
                yield batch
            elif ended:
                if failure:
                    raise failure[0]
                return
            else:
                arrived.clear()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
