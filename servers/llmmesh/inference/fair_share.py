"""The accounts of the admission queue's start-time fair queuing, in this process or shared by replicas.

Per lane (a model and a priority class): the lane's virtual clock and each key's virtual finish time
(llmmesh.inference.admission explains the discipline). `LocalFairShare` keeps them in this process.
`SharedFairShare` keeps them in Redis, so a key flooding replica A has used its share on replica B
too, while the queue's decisions stay synchronous — a grant happens in the same step as the slot
freeing, often in a `finally` block, and never waits on the network:

- Each call is answered at once from a local mirror (a LocalFairShare) and sent to Redis behind it,
  in call order, by one writer task; each step there is one atomic Lua script.
- Redis's answer to a stamp is the request's start in the shared account. The mirror learns it (the
  key's next stamp here starts from there), and a request still waiting takes that start (its place
  in the queue moves) through the `restamp` callback; one already served or gone has its `served`
  or `refund` sent with it.
- Redis away (ResilientState marks it down, logs once and tries it again): updates are dropped and
  the mirror alone decides, as without Redis; the account there is the one from before the outage.
  Whatever LLMMESH_REDIS_FAILURE_POLICY says, fairness never refuses or delays anyone: it orders.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from llmmesh.framework.shared_state import RedisUnreachable, ResilientState, SharedState

log = logging.getLogger("llmmesh.inference")

# Called, after `stamp` returned (never from within it), with the start the shared account gave the
# request: whether the request still waits and now carries that start.
Restamp = Callable[[float], bool]
# Updates still unsent at close are sent for at most this long (graceful stop).
_FLUSH_AT_CLOSE_S = 1.0


class FairShare(Protocol):
    def stamp(self, lane: str, key: str, cost: float, restamp: Restamp) -> float:
        """A new request of `key` costing `cost`: its virtual start (the later of the lane's clock
        and the key's finish), the key's finish moved on by `cost`. A shared account may learn a
        different start later and call `restamp` with it."""
        ...

    def served(self, lane: str, key: str, start: float) -> None:
        """A request of `key` stamped `start` got its slot: the lane's clock moves up to it."""
        ...

    def refund(self, lane: str, key: str, start: float, cost: float) -> None:
        """A request left unserved (cancelled, refused): its cost back, if it was the key's latest."""
        ...

    async def close(self) -> None:
        ...


class LocalFairShare:
    """FairShare in this process. Keys are the key file's names (or "" without keys): bounded."""

    def __init__(self) -> None:
        self._clock: dict[str, float] = {}
        self._finish: dict[tuple[str, str], float] = {}

    def stamp(self, lane: str, key: str, cost: float, restamp: Restamp | None = None) -> float:
        start = max(self._clock.get(lane, 0.0), self._finish.get((lane, key), 0.0))
        self._finish[(lane, key)] = start + cost
        return start

    def served(self, lane: str, key: str, start: float) -> None:
        self._clock[lane] = max(self._clock.get(lane, 0.0), start)

    def refund(self, lane: str, key: str, start: float, cost: float) -> None:
        if self._finish.get((lane, key)) == start + cost:
            self._finish[(lane, key)] = start

    def learn(self, lane: str, key: str, finish: float) -> None:
        """The key's finish is at least `finish` (what the shared account says)."""
        self._finish[(lane, key)] = max(self._finish.get((lane, key), 0.0), finish)

    async def close(self) -> None:
        pass


@dataclass
class _Stamp:
    """A stamp sent to Redis, until the request leaves with the local start it was given."""

    local: float
    shared: float | None = None  # Redis's start, once it answered (None: it never did)


class SharedFairShare:
    def __init__(self, state: ResilientState, namespace: str = "sfq") -> None:
        self._state = state
        self._namespace = namespace
        self._mirror = LocalFairShare()
        self._updates: asyncio.Queue[Callable[[SharedState], Awaitable[None]]] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        # Stamps whose request still carries its local start, by (lane, key, that start): at most
        # one per waiting request; its served/refund takes it over.
        self._pending: dict[tuple[str, str, float], _Stamp] = {}

    def stamp(self, lane: str, key: str, cost: float, restamp: Restamp) -> float:
        start = self._mirror.stamp(lane, key, cost)
        sent = self._pending[(lane, key, start)] = _Stamp(start)

        async def update(redis: SharedState) -> None:
            sent.shared = await redis.counter_stamp(self._finish(lane, key), self._clock(lane), cost)
            self._mirror.learn(lane, key, sent.shared + cost)
            if sent.shared != start and restamp(sent.shared):
                self._pending.pop((lane, key, start), None)  # the request carries the shared start now
        self._send(update)
        return start

    def served(self, lane: str, key: str, start: float) -> None:
        self._mirror.served(lane, key, start)
        sent = self._pending.pop((lane, key, start), None)

        async def update(redis: SharedState) -> None:
            shared = start if sent is None else sent.shared
            if shared is not None:
                self._mirror.served(lane, key, shared)
                await redis.counter_raise(self._clock(lane), shared)
        self._send(update)

    def refund(self, lane: str, key: str, start: float, cost: float) -> None:
        self._mirror.refund(lane, key, start, cost)
        sent = self._pending.pop((lane, key, start), None)

        async def update(redis: SharedState) -> None:
            shared = start if sent is None else sent.shared
            if shared is not None:
                await redis.counter_swap(self._finish(lane, key), shared + cost, shared)
        self._send(update)

    async def flush(self) -> None:
        """Until every update made so far was sent to Redis, or dropped while it is away."""
        await self._updates.join()

    async def close(self) -> None:
        if self._writer is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_FLUSH_AT_CLOSE_S):
                await self.flush()
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer
        self._writer = None

    def _clock(self, lane: str) -> str:
        return f"{self._namespace}:{lane}:clock"

    def _finish(self, lane: str, key: str) -> str:
        return f"{self._namespace}:{lane}:finish:{key}"

    def _send(self, update: Callable[[SharedState], Awaitable[None]]) -> None:
        self._updates.put_nowait(update)
        if self._writer is None:
            # Its own context: it works for no request in particular.
            self._writer = asyncio.get_running_loop().create_task(self._write(), context=contextvars.Context())

    async def _write(self) -> None:
        while True:
            update = await self._updates.get()
            try:
                await self._state.on_redis(update)
            except RedisUnreachable:
                pass  # away: the mirror decides alone (ResilientState logged it, counts and retries)
            except Exception:  # never let one bad update stop the accounting
                log.exception("fair-share update failed")
            finally:
                self._updates.task_done()


def fair_share_over(state: SharedState) -> FairShare:
    """Shared accounts when the shared state is Redis (LLMMESH_REDIS_URL), else this process's own."""
    return SharedFairShare(state) if isinstance(state, ResilientState) else LocalFairShare()
