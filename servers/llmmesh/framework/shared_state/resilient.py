"""Redis in front of an in-process fallback, with the configured failure policy.

While Redis answers, every operation goes to it. When a call fails (refused, timed out, an error
reply), Redis is marked down — one warning in the log, the `llmmesh_redis_up` gauge at 0, every
failed call counted in `llmmesh_redis_errors_total` — and no request waits on it any more: a
background task pings it every `retry_s` (the client reconnects), and the first answer marks it up
again (one info line), traffic or not. Meanwhile:

- **fail-open** (the default): everything is served from this process's own state, as without
  Redis: limits hold per replica, not mesh-wide, until Redis is back.
- **fail-closed**: an admission *decision* (a bucket with a `need`) raises Unavailable, so the
  request is refused with UNAVAILABLE and a clear message. Bookkeeping that never refuses anyone
  (charging a generation that ran) and the response cache still go to the fallback: a finished
  generation is never turned into an error, and the cache only makes requests cheaper.

The admission queue's fairness accounts bypass the fallback (`on_redis`): they keep their own
mirror in the queue's process (llmmesh.inference.fair_share), which decides alone meanwhile.

Nothing is copied between the two stores: at an outage a key's fallback bucket starts full, and
when Redis returns it holds the state from before the outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge

from llmmesh.framework.errors import Unavailable
from llmmesh.framework.shared_state.interface import BucketResult, SharedState
from llmmesh.framework.shared_state.local import Clock, LocalState
from llmmesh.framework.shared_state.redis_state import RedisState, RedisUnreachable
from llmmesh.settings import FailurePolicy

log = logging.getLogger("llmmesh.shared_state")
T = TypeVar("T")

_DOWN = {
    FailurePolicy.OPEN: "Redis unreachable: serving on with this process's own limits and cache until it is back",
    FailurePolicy.CLOSED: "Redis unreachable: refusing requests that need a limit checked (UNAVAILABLE) until it "
                          "is back",
}


@dataclass(frozen=True)
class RedisMetrics:
    up: Gauge
    errors: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry | None) -> RedisMetrics:
        return cls(
            up=Gauge("llmmesh_redis_up", "1 while the shared-state Redis answers, 0 while it is unreachable.",
                     registry=registry),
            errors=Counter("llmmesh_redis_errors_total", "Shared-state Redis calls that failed or timed out.",
                           registry=registry),
        )


class ResilientState:
    def __init__(self, primary: RedisState, fallback: LocalState, policy: FailurePolicy, retry_s: float,
                 metrics: RedisMetrics, clock: Clock = time.monotonic) -> None:
        self.primary, self.fallback = primary, fallback
        self.policy = policy
        self._retry_s = retry_s
        self._metrics = metrics
        self._clock = clock
        self._down_since: float | None = None
        self._reconnecting: asyncio.Task[None] | None = None
        metrics.up.set(1)

    @property
    def up(self) -> bool:
        return self._down_since is None

    async def on_redis(self, op: Callable[[SharedState], Awaitable[T]]) -> T:
        """`op` on Redis, never on the fallback: RedisUnreachable at once while Redis is down, or when
        this call finds it so (marking it down). For state whose caller keeps its own copy (the
        admission queue's fairness accounts)."""
        if self._down_since is not None:
            raise RedisUnreachable("down")
        try:
            return await op(self.primary)
        except RedisUnreachable as exc:
            self._went_down(str(exc))
            raise

    async def _call(self, op: Callable[[SharedState], Awaitable[T]], decision: bool) -> T:
        with contextlib.suppress(RedisUnreachable):
            return await self.on_redis(op)
        if decision and self.policy is FailurePolicy.CLOSED:
            raise Unavailable("shared state (Redis) is unreachable and LLMMESH_REDIS_FAILURE_POLICY=closed: "
                              "limits cannot be checked, so the request is refused", retry_after_s=self._retry_s)
        return await op(self.fallback)

    def _went_down(self, reason: str) -> None:
        self._metrics.errors.inc()
        if self._down_since is None:
            self._down_since = self._clock()
            self._metrics.up.set(0)
            log.warning(_DOWN[self.policy], extra={"error": reason, "policy": self.policy.value,
                                                   "retry_s": self._retry_s})
            # Its own context: its log line belongs to no request.
            self._reconnecting = asyncio.create_task(self._reconnect(), context=contextvars.Context())

    async def _reconnect(self) -> None:
        while True:
            await asyncio.sleep(self._retry_s)
            try:
                await self.primary.ping()
            except RedisUnreachable:
                self._metrics.errors.inc()
                continue
            assert self._down_since is not None
            log.info("Redis reachable again: shared state resumed",
                     extra={"down_s": round(self._clock() - self._down_since, 3)})
            self._down_since = None
            self._metrics.up.set(1)
            return

    async def bucket(self, key: str, capacity: float, rate: float, take: float,
                     need: float | None = None) -> BucketResult:
        return await self._call(lambda s: s.bucket(key, capacity, rate, take, need), decision=need is not None)

    async def counter_raise(self, key: str, floor: float) -> float:
        return await self._call(lambda s: s.counter_raise(key, floor), decision=False)

    async def counter_stamp(self, key: str, floor_key: str, amount: float) -> float:
        return await self._call(lambda s: s.counter_stamp(key, floor_key, amount), decision=False)

    async def counter_swap(self, key: str, expected: float, new: float) -> bool:
        return await self._call(lambda s: s.counter_swap(key, expected, new), decision=False)

    async def blob_get(self, key: str) -> bytes | None:
        return await self._call(lambda s: s.blob_get(key), decision=False)

    async def blob_put(self, key: str, value: bytes, ttl_s: float) -> int:
        return await self._call(lambda s: s.blob_put(key, value, ttl_s), decision=False)

    async def start(self) -> None:
        """Ask Redis once at start-up, so an unreachable one is logged (and the gauge right) at once."""
        await self._call(lambda s: s.start(), decision=False)

    async def close(self) -> None:
        if self._reconnecting is not None:
            self._reconnecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconnecting
        await self.primary.close()
