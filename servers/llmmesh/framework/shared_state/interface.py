"""What the mesh keeps in shared state, as one narrow interface with two implementations.

- **Token buckets** (request rates, token budgets): refill, then take, in one atomic step.
- **Counters** (the admission queue's fairness accounts, llmmesh.inference.fair_share): raise to a
  floor, stamp, compare-and-set (start-time fair queuing's virtual clocks). Each is atomic.
- **Blobs with a time to live** (the response cache).

`LocalState` keeps them in this process (the embedded default); `RedisState` keeps them in Redis
with Lua scripts, so N replicas share one bucket per key; `ResilientState` puts Redis in front of
a local fallback and applies the failure policy. Keys are plain strings chosen by the caller
(`rate:<key name>`, `tokens:<key name>:<quota>`, ...); each implementation namespaces them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class BucketResult:
    taken: bool
    # The bucket's level after the refill and, if taken, the take (negative: debt).
    level: float

    def wait_for(self, amount: float, rate: float) -> float:
        """Seconds until the bucket holds `amount` again (0 if it already does)."""
        return max(0.0, (amount - self.level) / rate)


class SharedState(Protocol):
    async def bucket(self, key: str, capacity: float, rate: float, take: float,
                     need: float | None = None) -> BucketResult:
        """Refill bucket `key` (a new one, or one whose capacity or rate changed, starts full; it
        refills `rate` per second up to `capacity`), then take `take` from it if `need` is None or
        its level is at least `need`. With `need` None this is bookkeeping that always happens (a
        charge may drive the level below zero); with a `need` it is an admission decision."""
        ...

    async def counter_raise(self, key: str, floor: float) -> float:
        """Set counter `key` (a missing counter is 0) to at least `floor`; the new value."""
        ...

    async def counter_stamp(self, key: str, floor_key: str, amount: float) -> float:
        """start = max(counter `key`, counter `floor_key`); counter `key` = start + amount; the start."""
        ...

    async def counter_swap(self, key: str, expected: float, new: float) -> bool:
        """Set the counter to `new` if it holds exactly `expected`; whether it did."""
        ...

    async def blob_get(self, key: str) -> bytes | None:
        """The value stored under `key`, unless it expired."""
        ...

    async def blob_put(self, key: str, value: bytes, ttl_s: float) -> int:
        """Store `value` for `ttl_s` seconds; returns how many other entries were evicted for room."""
        ...

    async def start(self) -> None:
        ...

    async def close(self) -> None:
        ...
