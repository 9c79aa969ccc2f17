"""The shared-state operations, with the same assertions against the in-process store and a real
redis-server; then Redis going away, hanging and coming back, under each failure policy."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry

from llmmesh.framework.errors import Unavailable
from llmmesh.framework.shared_state import LocalState, RedisMetrics, RedisState, ResilientState, SharedState
from llmmesh.settings import CacheSettings, FailurePolicy, Settings, SettingsError
from tests.support.redis_proc import RedisServer

TIMEOUT_S = 0.2
RETRY_S = 0.3


@pytest.fixture(params=["memory", "redis"])
async def state(request: pytest.FixtureRequest) -> AsyncIterator[SharedState]:
    if request.param == "memory":
        yield LocalState()
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    store = RedisState(server.url, timeout_s=2.0)
    try:
        yield store
    finally:
        await store.close()


async def test_a_bucket_admits_its_capacity_then_refuses_then_refills(state: SharedState) -> None:
    for _ in range(3):
        assert (await state.bucket("rate:a", 3, 1.0, take=1, need=1)).taken
    refused = await state.bucket("rate:a", 3, 1.0, take=1, need=1)
    assert not refused.taken and 0 <= refused.level < 0.5
    assert refused.wait_for(1.0, 1.0) > 0.5
    # Another key has its own bucket.
    assert (await state.bucket("rate:b", 3, 1.0, take=1, need=1)).taken
    # 20 per second: one is back well within 0.3 s.
    assert (await state.bucket("rate:fast", 1, 20.0, take=1, need=1)).taken
    assert not (await state.bucket("rate:fast", 1, 20.0, take=1, need=1)).taken
    await asyncio.sleep(0.3)
    assert (await state.bucket("rate:fast", 1, 20.0, take=1, need=1)).taken


async def test_a_charge_goes_into_debt_and_a_new_capacity_starts_full(state: SharedState) -> None:
    charged = await state.bucket("tokens:k:tokens_per_minute", 60, 1.0, take=90)
    assert charged.taken and charged.level == pytest.approx(-30, abs=0.5)
    peek = await state.bucket("tokens:k:tokens_per_minute", 60, 1.0, take=0, need=1)
    assert not peek.taken and peek.wait_for(1.0, 1.0) == pytest.approx(31, abs=0.5)
    # The key file changed the budget: the bucket starts again, full.
    assert (await state.bucket("tokens:k:tokens_per_minute", 100, 100 / 60, take=0)).level == pytest.approx(100)


async def test_counters_stamp_from_a_floor_raise_and_swap_exactly(state: SharedState) -> None:
    """Start-time fair queuing's steps (llmmesh.inference.fair_share): a key's finish, its lane's clock."""
    assert await state.counter_stamp("finish:a", "clock", 1.0) == 0
    assert await state.counter_stamp("finish:a", "clock", 1 / 3) == 1.0
    assert await state.counter_raise("clock", 2.0) == 2.0
    assert await state.counter_raise("clock", 1.5) == 2.0  # a clock never goes back
    assert await state.counter_stamp("finish:b", "clock", 1.0) == 2.0  # an idle key starts at the clock
    # A refund: back to the start only if the finish is still exactly start + cost (1/3 round-trips).
    assert not await state.counter_swap("finish:a", 1.0, 1.0)
    assert await state.counter_swap("finish:a", 1.0 + 1 / 3, 1.0)
    assert await state.counter_stamp("finish:a", "clock", 1.0) == 2.0


async def test_blobs_are_kept_for_their_time_to_live(state: SharedState) -> None:
    assert await state.blob_get("response:x") is None
    await state.blob_put("response:x", b"\x00answer", ttl_s=60)
    await state.blob_put("response:short", b"soon gone", ttl_s=0.2)
    assert await state.blob_get("response:x") == b"\x00answer"
    assert await state.blob_get("response:short") == b"soon gone"
    await asyncio.sleep(0.5)
    assert await state.blob_get("response:short") is None
    assert await state.blob_get("response:x") == b"\x00answer"


async def test_replicas_take_from_one_bucket_atomically(redis_server: RedisServer) -> None:
    replicas = [RedisState(redis_server.url, timeout_s=2.0) for _ in range(2)]
    try:
        # 60 concurrent takes, half through each "replica", from a bucket of 10 that refills slowly.
        results = await asyncio.gather(*(replicas[i % 2].bucket("rate:shared", 10, 0.01, take=1, need=1)
                                         for i in range(60)))
        assert sum(r.taken for r in results) == 10
        # 12 concurrent stamps of one key: 12 distinct starts, one after the other.
        starts = await asyncio.gather(*(replicas[i % 2].counter_stamp("finish:k", "clock", 1.0) for i in range(12)))
        assert sorted(starts) == list(range(12))
    finally:
        for r in replicas:
            await r.close()


async def test_redis_keys_expire_once_they_say_nothing(redis_server: RedisServer) -> None:
    store = RedisState(redis_server.url, timeout_s=2.0)
    try:
        await store.bucket("rate:idle", 5, 1.0, take=2, need=1)
        await store.blob_put("response:r", b"x", ttl_s=30)
        await store.counter_raise("clock", 1)
        with redis_server.client() as c:
            # Full again after 2 s: a missing bucket is a full one, so it may go then.
            assert 2000 <= c.pttl("llmmesh:bucket:rate:idle") <= 3000
            assert 29_000 < c.pttl("llmmesh:blob:response:r") <= 30_000
            assert c.ttl("llmmesh:counter:clock") > 0
    finally:
        await store.close()


def test_the_in_process_lru_evicts_by_entries_and_bytes() -> None:
    clock = [0.0]
    local = LocalState(lambda: clock[0], CacheSettings(max_entries=3, max_bytes=10))
    lru = local.blobs
    assert lru.put("a", b"1", 60) == 0 and lru.put("b", b"2", 60) == 0 and lru.put("c", b"3", 60) == 0
    assert lru.get("a") == b"1"  # a is now the most recently used
    assert lru.put("d", b"4", 60) == 1  # b goes
    assert lru.get("b") is None and lru.get("a") == b"1"
    assert lru.put("e", b"12345678", 60) == 1  # c, a, d, e: 11 bytes > 10, c goes
    assert lru.get("c") is None and len(lru) == 3 and lru.bytes == 10
    assert lru.put("huge", b"x" * 11, 60) == 0 and lru.get("huge") is None  # never fits: not stored
    clock[0] = 61.0
    assert lru.put("f", b"1", 60) == 0  # the expired entries leaving room are no evictions
    assert lru.get("e") is None


# ---- Redis going away ------------------------------------------------------------------------


def resilient(server: RedisServer, policy: FailurePolicy, registry: CollectorRegistry) -> ResilientState:
    return ResilientState(RedisState(server.url, TIMEOUT_S), LocalState(), policy, RETRY_S,
                          RedisMetrics.create(registry))


def redis_metrics(registry: CollectorRegistry) -> tuple[float | None, float | None]:
    return registry.get_sample_value("llmmesh_redis_up"), registry.get_sample_value("llmmesh_redis_errors_total")


def log_lines(caplog: pytest.LogCaptureFixture, text: str) -> int:
    return sum(text in r.getMessage() for r in caplog.records if r.name == "llmmesh.shared_state")


async def recovered(state: ResilientState) -> None:
    deadline = time.monotonic() + 10
    while not state.up:
        assert time.monotonic() < deadline, "Redis did not come back"
        await state.blob_get("response:probe")  # never refused, whatever the policy
        await asyncio.sleep(0.05)


async def test_fail_open_serves_on_from_this_process_and_recovers(
        redis_server: RedisServer, registry: CollectorRegistry, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "llmmesh.shared_state")
    a, b = resilient(redis_server, FailurePolicy.OPEN, registry), resilient(redis_server, FailurePolicy.OPEN,
                                                                             CollectorRegistry())
    try:
        await a.start()
        assert redis_metrics(registry) == (1, 0)
        assert (await a.bucket("rate:k", 2, 0.01, take=1, need=1)).taken
        assert (await b.bucket("rate:k", 2, 0.01, take=1, need=1)).taken
        assert not (await a.bucket("rate:k", 2, 0.01, take=1, need=1)).taken  # shared: 2 in all

        redis_server.kill()
        # Fail-open: this process's own bucket (it starts full) decides; many calls, one log line.
        outcomes = [(await a.bucket("rate:k", 2, 0.01, take=1, need=1)).taken for _ in range(20)]
        assert outcomes == [True, True] + [False] * 18
        await a.blob_put("response:z", b"kept here", 60)
        assert await a.blob_get("response:z") == b"kept here"
        up, errors = redis_metrics(registry)
        assert up == 0 and errors is not None and errors >= 1
        assert log_lines(caplog, "Redis unreachable") == 1

        redis_server.restart()  # empty: nothing was persisted
        await recovered(a)
        assert redis_metrics(registry)[0] == 1
        assert log_lines(caplog, "Redis reachable again") == 1
        # Shared again: the two replicas' takes come out of one bucket.
        assert (await a.bucket("rate:k", 2, 0.01, take=1, need=1)).taken
        await recovered(b)
        assert (await b.bucket("rate:k", 2, 0.01, take=1, need=1)).taken
        assert not (await a.bucket("rate:k", 2, 0.01, take=1, need=1)).taken
    finally:
        await a.close()
        await b.close()


async def test_fail_closed_refuses_decisions_but_never_bookkeeping(
        redis_server: RedisServer, registry: CollectorRegistry, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "llmmesh.shared_state")
    state = resilient(redis_server, FailurePolicy.CLOSED, registry)
    try:
        assert (await state.bucket("rate:k", 5, 1, take=1, need=1)).taken
        redis_server.kill()
        for _ in range(3):
            with pytest.raises(Unavailable) as err:
                await state.bucket("rate:k", 5, 1, take=1, need=1)
            assert "Redis" in err.value.message and "closed" in err.value.message
        # A generation that ran is still charged, the cache still used.
        assert (await state.bucket("tokens:k:tokens_per_minute", 60, 1, take=10)).taken
        await state.blob_put("response:z", b"v", 60)
        assert await state.blob_get("response:z") == b"v"
        assert log_lines(caplog, "Redis unreachable") == 1
        assert redis_metrics(registry)[0] == 0

        redis_server.restart()
        await recovered(state)
        assert (await state.bucket("rate:k", 5, 1, take=1, need=1)).taken
    finally:
        await state.close()


@pytest.mark.parametrize("policy", list(FailurePolicy))
async def test_a_hung_redis_costs_one_timeout_not_a_hang(
        redis_server: RedisServer, registry: CollectorRegistry, policy: FailurePolicy) -> None:
    state = resilient(redis_server, policy, registry)
    try:
        await state.start()
        redis_server.freeze()  # connections open, no answers
        t0 = time.monotonic()
        for _ in range(20):
            try:
                await state.bucket("rate:k", 100, 1, take=1, need=1)
            except Unavailable:
                assert policy is FailurePolicy.CLOSED
            else:
                assert policy is FailurePolicy.OPEN
        # One call waits for the timeout and marks Redis down; the rest do not wait on it. The bound
        # is loose on purpose: it tells a hang (20 x timeout, or forever) from a timeout.
        assert time.monotonic() - t0 < 20 * TIMEOUT_S
        assert redis_metrics(registry)[0] == 0
        redis_server.thaw()
        await recovered(state)
    finally:
        redis_server.thaw()
        await state.close()


def test_the_settings_read_and_refuse_what_they_should() -> None:
    env = {"LLMMESH_REDIS_URL": "redis://redis:6379/0", "LLMMESH_REDIS_FAILURE_POLICY": "Closed",
           "LLMMESH_REDIS_TIMEOUT_S": "0.1", "LLMMESH_CACHE_ENABLED": "off", "LLMMESH_CACHE_TTL_S": "60"}
    settings = Settings.from_env(env)
    assert settings.shared_state.redis_url == "redis://redis:6379/0" and settings.shared_state.timeout_s == 0.1
    assert settings.shared_state.failure_policy is FailurePolicy.CLOSED
    assert not settings.cache.enabled and settings.cache.ttl_s == 60
    for bad in ({"LLMMESH_REDIS_URL": "redis:6379"}, {"LLMMESH_REDIS_FAILURE_POLICY": "sometimes"},
                {"LLMMESH_CACHE_ENABLED": "maybe"}, {"LLMMESH_CACHE_MAX_ENTRIES": "0"}):
        with pytest.raises(SettingsError, match=next(iter(bad))):
            Settings.from_env(bad)
