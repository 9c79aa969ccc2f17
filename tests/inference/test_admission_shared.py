"""Two admission queues (two replicas) whose fair-share accounts are shared through one real
redis-server: a key that flooded one replica waits behind a light key on the other, a cancelled
waiter's charge comes back everywhere, and with Redis killed or hung grants go on at once, fairness
deciding on each replica's own accounts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack

import pytest
from prometheus_client import CollectorRegistry

from llmmesh.framework.shared_state import LocalState, RedisMetrics, RedisState, ResilientState
from llmmesh.inference.admission import Admission, Claim, Ticket
from llmmesh.inference.fair_share import SharedFairShare
from llmmesh.inference.metrics import InferenceMetrics
from llmmesh.inference.pool import BackendPool
from llmmesh.settings import FailurePolicy
from tests.inference.test_admission_units import serve
from tests.inference.test_pool_units import backend
from tests.support.redis_proc import RedisServer

TIMEOUT_S = 0.2

Replica = Callable[..., Admission]


def keys(ticket: Ticket) -> list[str]:
    return [t.claim.key for t in ticket.queue.waiters]


def settle(adm: Admission) -> asyncio.Future[None]:
    """Until the replica's accounting reached Redis (or was dropped while it is away)."""
    assert isinstance(adm.fair_share, SharedFairShare)
    return asyncio.ensure_future(asyncio.wait_for(adm.fair_share.flush(), 10))


@pytest.fixture
async def replica(redis_server: RedisServer) -> AsyncIterator[Replica]:
    """Make a replica: one backend with one slot, its own ResilientState on the shared Redis."""
    async with AsyncExitStack() as stack:
        def make(registry: CollectorRegistry | None = None) -> Admission:
            state = ResilientState(RedisState(redis_server.url, TIMEOUT_S), LocalState(), FailurePolicy.OPEN, 0.3,
                                   RedisMetrics.create(registry or CollectorRegistry()))
            adm = Admission(BackendPool([backend("a")], 1), InferenceMetrics.create(CollectorRegistry()), 64, 30.0,
                            SharedFairShare(state))
            stack.push_async_callback(state.close)
            stack.push_async_callback(adm.close)
            return adm
        yield make


async def test_a_key_that_flooded_one_replica_waits_behind_a_light_key_on_another(replica: Replica) -> None:
    a, b = replica(), replica()
    on_a = [a.enter("m", Claim("heavy")) for _ in range(10)]  # one served, nine waiting
    await settle(a)
    holder = b.enter("m", Claim("other"))
    heavy, light = b.enter("m", Claim("heavy")), b.enter("m", Claim("light"))
    # Decided at once on B's own accounts (first come), then placed by the shared ones: heavy has
    # had ten slots' worth on A.
    assert keys(heavy) == ["heavy", "light"]
    await settle(b)
    assert keys(heavy) == ["light", "heavy"] and heavy.queue.place(heavy) == (2, 2)
    holder.close()
    assert light.granted and not heavy.granted
    # B's own accounts learned it: heavy's next request there is behind light's next too.
    more_heavy, more_light = b.enter("m", Claim("heavy")), b.enter("m", Claim("light"))
    assert keys(heavy) == ["light", "heavy", "heavy"]
    await settle(b)
    assert keys(heavy) == ["light", "heavy", "heavy"] and more_light.queue.place(more_light)[0] == 1
    for t in [*on_a, light, heavy, more_heavy, more_light]:
        t.close()


async def test_without_the_shared_accounts_the_flood_on_one_replica_is_not_seen_on_another() -> None:
    """The same scene, each replica keeping its own accounts: the discriminating baseline."""
    def local() -> Admission:
        return Admission(BackendPool([backend("a")], 1), InferenceMetrics.create(CollectorRegistry()), 64, 30.0)
    a, b = local(), local()
    for _ in range(10):
        a.enter("m", Claim("heavy"))
    b.enter("m", Claim("other"))
    heavy = b.enter("m", Claim("heavy"))
    b.enter("m", Claim("light"))
    await asyncio.sleep(0.05)
    assert keys(heavy) == ["heavy", "light"]


async def test_cancelled_waiters_give_their_charge_back_on_every_replica(replica: Replica) -> None:
    a, b = replica(), replica()
    holder = a.enter("m", Claim("other"))
    waiters = [a.enter("m", Claim("heavy")) for _ in range(5)]
    for t in reversed(waiters):  # cancelled before Redis even heard of them: still in order there
        t.close()
    await settle(a)
    b.enter("m", Claim("other"))
    heavy = b.enter("m", Claim("heavy"))
    b.enter("m", Claim("light"))
    await settle(b)
    assert keys(heavy) == ["heavy", "light"]  # uncharged: first come, first served
    holder.close()


async def test_with_redis_killed_grants_go_on_and_each_replica_keeps_its_own_fairness(
        replica: Replica, redis_server: RedisServer) -> None:
    registry = CollectorRegistry()
    a = replica(registry)
    holder = a.enter("m", Claim("other"))
    redis_server.kill()
    heavy = [a.enter("m", Claim("heavy")) for _ in range(4)]
    light = [a.enter("m", Claim("light")) for _ in range(2)]
    await settle(a)  # the updates are dropped, none waits for Redis
    assert registry.get_sample_value("llmmesh_redis_up") == 0
    order = serve(a, [holder, *heavy, *light], 6)
    assert [t.claim.key for t in order] == ["heavy", "light"] * 2 + ["heavy"] * 2  # this replica's own accounts


async def test_with_redis_hung_a_freed_slot_is_granted_in_the_same_step(
        replica: Replica, redis_server: RedisServer) -> None:
    registry = CollectorRegistry()
    a = replica(registry)
    holder = a.enter("m", Claim("other"))
    redis_server.freeze()
    try:
        waiter = a.enter("m", Claim("heavy"))
        queued = a.enter("m", Claim("light"))
        holder.close()  # nothing awaited: a grant never waits on Redis
        assert waiter.granted and not queued.granted
        queued.close()  # and a cancelled waiter leaves at once
        assert queued.queue.waiters == []
        await settle(a)  # one timeout marks Redis down; the rest are dropped
        assert registry.get_sample_value("llmmesh_redis_up") == 0
        waiter.close()
        assert a.pool.backends[0].in_flight == 0
    finally:
        redis_server.thaw()
