"""Shared state in Redis, so every replica of a service sees one bucket, counter and cache per key.

Each read-modify-write is one Lua script, atomic in Redis, timed by Redis's own clock (TIME), so
replicas on hosts whose clocks differ still agree. A bucket key expires once the bucket would be
full again (a missing bucket is a full one), a counter after an hour without writes, a blob after
its time to live: nothing is left behind for keys that went quiet.

Every call is bounded by `timeout_s` (connect, socket reads, and the whole call) and is never
retried here: a failure raises RedisUnreachable at once, and ResilientState decides what then.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable
from typing import TypeVar

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from llmmesh.framework.shared_state.interface import BucketResult

T = TypeVar("T")
PREFIX = "llmmesh:"
COUNTER_TTL_S = 3600
# need = None: always take (a bookkeeping charge).
_ALWAYS = "-1e300"
# Numbers are stored and returned as text that reads back as the very same double (%.17g; Lua's
# tostring keeps 14 digits), so a value handed back can be compared exactly (counter_swap).
_NUM = "local function num(v) return string.format('%.17g', v) end\n"

# KEYS[1] bucket; ARGV capacity, rate, take, need. Returns {taken, level}.
_BUCKET = _NUM + """
local capacity, rate = tonumber(ARGV[1]), tonumber(ARGV[2])
local take, need = tonumber(ARGV[3]), tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local b = redis.call('HMGET', KEYS[1], 'level', 'updated', 'capacity', 'rate')
local level, updated = tonumber(b[1]), tonumber(b[2])
if level == nil or b[3] ~= ARGV[1] or b[4] ~= ARGV[2] then
  level, updated = capacity, now
end
level = math.min(capacity, level + math.max(0, now - updated) * rate)
local taken = 0
if level >= need then
  level = level - take
  taken = 1
end
redis.call('HSET', KEYS[1], 'level', num(level), 'updated', num(now), 'capacity', ARGV[1], 'rate', ARGV[2])
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - level) / rate * 1000) + 1000)
return {taken, num(level)}
"""

# KEYS[1] counter; ARGV floor, ttl seconds. Returns the new value.
_COUNTER_RAISE = _NUM + """
local value = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), tonumber(ARGV[1]))
redis.call('SET', KEYS[1], num(value), 'EX', ARGV[2])
return num(value)
"""

# KEYS[1] counter, KEYS[2] its floor; ARGV amount, ttl seconds. Returns the start.
_COUNTER_STAMP = _NUM + """
local start = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), tonumber(redis.call('GET', KEYS[2]) or '0'))
redis.call('SET', KEYS[1], num(start + tonumber(ARGV[1])), 'EX', ARGV[2])
return num(start)
"""

# KEYS[1] counter; ARGV expected, new, ttl seconds. Returns 1 if swapped.
_COUNTER_SWAP = _NUM + """
if tonumber(redis.call('GET', KEYS[1]) or '0') ~= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""


class RedisUnreachable(Exception):
    """Redis did not answer in time, refused the connection, or answered with an error."""


class RedisState:
    def __init__(self, url: str, timeout_s: float) -> None:
        self._timeout = timeout_s
        # No retries inside the client (its default retries 3 times with backoff): one bounded try.
        self._client = Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                                      retry=Retry(NoBackoff(), 0), decode_responses=False)
        self._bucket = self._client.register_script(_BUCKET)
        self._raise = self._client.register_script(_COUNTER_RAISE)
        self._stamp = self._client.register_script(_COUNTER_STAMP)
        self._swap = self._client.register_script(_COUNTER_SWAP)

    async def _run(self, call: Awaitable[T]) -> T:
        try:
            async with asyncio.timeout(self._timeout):
                return await call
        except (RedisError, OSError, TimeoutError) as exc:
            raise RedisUnreachable(f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__) from None

    async def ping(self) -> None:
        await self._run(self._client.ping())

    async def bucket(self, key: str, capacity: float, rate: float, take: float,
                     need: float | None = None) -> BucketResult:
        taken, level = await self._run(self._bucket(
            keys=[PREFIX + "bucket:" + key], args=[repr(float(capacity)), repr(float(rate)), repr(float(take)),
                                                   _ALWAYS if need is None else repr(float(need))]))
        return BucketResult(bool(taken), float(level))

    async def counter_raise(self, key: str, floor: float) -> float:
        return float(await self._run(self._raise(keys=[PREFIX + "counter:" + key],
                                                 args=[repr(float(floor)), COUNTER_TTL_S])))

    async def counter_stamp(self, key: str, floor_key: str, amount: float) -> float:
        return float(await self._run(self._stamp(keys=[PREFIX + "counter:" + key, PREFIX + "counter:" + floor_key],
                                                 args=[repr(float(amount)), COUNTER_TTL_S])))

    async def counter_swap(self, key: str, expected: float, new: float) -> bool:
        return bool(await self._run(self._swap(keys=[PREFIX + "counter:" + key],
                                               args=[repr(float(expected)), repr(float(new)), COUNTER_TTL_S])))

    async def blob_get(self, key: str) -> bytes | None:
        return await self._run(self._client.get(PREFIX + "blob:" + key))

    async def blob_put(self, key: str, value: bytes, ttl_s: float) -> int:
        # Redis bounds the store itself (maxmemory with an LRU policy): nothing evicted here.
        await self._run(self._client.set(PREFIX + "blob:" + key, value, px=max(1, math.ceil(ttl_s * 1000))))
        return 0

    async def start(self) -> None:
        await self.ping()

    async def close(self) -> None:
        await self._client.aclose()
