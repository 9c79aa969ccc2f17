"""Shared state kept in this process: the embedded default, and the fallback while Redis is away.

Each replica has its own, so with N replicas a key gets N buckets. Buckets and counters exist only
for keys that are used (rate-limited keys, queued API keys); the blob store is an LRU bounded in
entries and bytes, entries expiring after their time to live.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from llmmesh.framework.shared_state.interface import BucketResult
from llmmesh.settings import CacheSettings

Clock = Callable[[], float]


@dataclass
class TokenBucket:
    capacity: float
    rate: float  # refill per second
    level: float
    updated: float

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + max(0.0, now - self.updated) * self.rate)
        self.updated = now


class LruBlobs:
    """Values with an expiry, least recently used evicted first beyond `max_entries` or `max_bytes`."""

    def __init__(self, max_entries: int, max_bytes: int, clock: Clock) -> None:
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._clock = clock
        self._items: OrderedDict[str, tuple[bytes, float]] = OrderedDict()  # value, expires at
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: str) -> bytes | None:
        item = self._items.get(key)
        if item is None:
            return None
        if item[1] <= self._clock():
            self._drop(key)
            return None
        self._items.move_to_end(key)
        return item[0]

    def put(self, key: str, value: bytes, ttl_s: float) -> int:
        if len(value) > self.max_bytes or self.max_entries < 1:
            return 0  # could never fit: not stored, nothing evicted for it
        if key in self._items:
            self._drop(key)
        self._items[key] = (value, self._clock() + ttl_s)
        self.bytes += len(value)
        evicted = 0
        now = self._clock()
        while len(self._items) > self.max_entries or self.bytes > self.max_bytes:
            oldest, (_, expires) = next(iter(self._items.items()))
            self._drop(oldest)
            evicted += expires > now  # an expired entry leaving is no eviction
        return evicted

    def _drop(self, key: str) -> None:
        value, _ = self._items.pop(key)
        self.bytes -= len(value)


class LocalState:
    def __init__(self, clock: Clock = time.monotonic, cache: CacheSettings | None = None) -> None:
        cache = cache or CacheSettings()
        self._clock = clock
        # One lock for all: every operation is a few dictionary steps.
        self._lock = threading.Lock()
        self._buckets: dict[str, TokenBucket] = {}
        self._counters: dict[str, float] = {}
        self.blobs = LruBlobs(cache.max_entries, cache.max_bytes, clock)

    async def bucket(self, key: str, capacity: float, rate: float, take: float,
                     need: float | None = None) -> BucketResult:
        now = self._clock()
        with self._lock:
            b = self._buckets.get(key)
            if b is None or b.capacity != capacity or b.rate != rate:
                b = self._buckets[key] = TokenBucket(capacity, rate, capacity, now)
            b.refill(now)
            taken = need is None or b.level >= need
            if taken:
                b.level -= take
            return BucketResult(taken, b.level)

    async def counter_raise(self, key: str, floor: float) -> float:
        with self._lock:
            value = self._counters[key] = max(self._counters.get(key, 0.0), floor)
            return value

    async def counter_stamp(self, key: str, floor_key: str, amount: float) -> float:
        with self._lock:
            start = max(self._counters.get(key, 0.0), self._counters.get(floor_key, 0.0))
            self._counters[key] = start + amount
            return start

    async def counter_swap(self, key: str, expected: float, new: float) -> bool:
        with self._lock:
            if self._counters.get(key, 0.0) != expected:
                return False
            self._counters[key] = new
            return True

    async def blob_get(self, key: str) -> bytes | None:
        with self._lock:
            return self.blobs.get(key)

    async def blob_put(self, key: str, value: bytes, ttl_s: float) -> int:
        with self._lock:
            return self.blobs.put(key, value, ttl_s)

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass
