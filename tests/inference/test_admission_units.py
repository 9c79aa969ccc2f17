"""The admission queue on its own, over a real BackendPool (no transport): slots granted at once or
in queue order as they free, fair share across keys under a flood, weights, strict priority and
the key's cap on it, continuations at the head, the bounds (length, wait, deadline) and fair
eviction, cancellation leaving nothing behind, and position updates while waiting."""

from __future__ import annotations

import asyncio
import time

import pytest
from prometheus_client import CollectorRegistry

from llmmesh.common.model_call import Queued
from llmmesh.common.priority import Priority
from llmmesh.framework import request_context
from llmmesh.framework.errors import DeadlineExceeded, Overloaded, Unavailable
from llmmesh.framework.principal import Principal
from llmmesh.inference.admission import Admission, Claim, LocalFairShare, Ticket
from llmmesh.inference.metrics import InferenceMetrics
from llmmesh.inference.pool import Backend, BackendPool
from tests.inference.test_pool_units import backend
from tests.support.sims import eventually

INTERACTIVE, BATCH = Priority.INTERACTIVE, Priority.BATCH


def make(*backends: Backend, cap: int = 1, max_length: int = 64, max_wait_s: float = 30.0,
         registry: CollectorRegistry | None = None) -> Admission:
    return Admission(BackendPool(list(backends) or [backend("a")], cap),
                     InferenceMetrics.create(registry or CollectorRegistry()), max_length, max_wait_s)


def claim(key: str = "k", weight: float = 1.0, priority: Priority = INTERACTIVE,
          deadline: float | None = None) -> Claim:
    return Claim(key, weight, priority, deadline)


def serve(adm: Admission, tickets: list[Ticket], grants: int) -> list[Ticket]:
    """Free the oldest held slot `grants` times; the tickets granted each time, in order."""
    order: list[Ticket] = []
    held = [t for t in tickets if t.granted]
    seen = set(held)
    for _ in range(grants):
        held.pop(0).close()
        new = [t for t in tickets if t.granted and t not in seen]
        seen.update(new)
        assert len(new) == 1, "one freed slot, one grant"
        order += new
        held += new
    return order


async def test_a_free_slot_is_granted_at_once_and_freed_on_close() -> None:
    a = backend("a")
    adm = make(a, cap=2)
    with adm.enter("m", claim()) as ticket:
        assert [q async for q in ticket.wait()] == [] and ticket.backend is a and a.in_flight == 1
    assert a.in_flight == 0
    ticket.close()  # idempotent
    assert a.in_flight == 0


async def test_beyond_capacity_a_request_waits_reporting_its_place_and_gets_the_freed_slot() -> None:
    a = backend("a")
    adm = make(a)
    first, second = adm.enter("m", claim()), adm.enter("m", claim())
    assert first.granted and not second.granted and a.in_flight == 1
    events = second.wait()
    assert await anext(events) == Queued(1, 1)
    first.close()
    assert [q async for q in events] == [] and second.backend is a and a.in_flight == 1
    second.close()
    assert a.in_flight == 0


async def test_a_flooding_key_cannot_starve_another() -> None:
    adm = make()
    heavy = [adm.enter("m", claim("heavy")) for _ in range(40)]
    light = [adm.enter("m", claim("light")) for _ in range(5)]
    order = serve(adm, heavy + light, 10)
    # Light arrived behind 39 waiting heavy requests, yet alternates with them from the next slot on.
    assert [t.claim.key for t in order] == ["light", "heavy"] * 5


async def test_weights_share_the_slots_in_their_ratio() -> None:
    adm = make(max_length=100)
    gold = [adm.enter("m", claim("gold", weight=3)) for _ in range(40)]
    plain = [adm.enter("m", claim("plain")) for _ in range(40)]
    keys = [t.claim.key for t in serve(adm, gold + plain, 40)]
    assert keys.count("gold") == 30 and keys.count("plain") == 10


async def test_interactive_is_served_before_batch_whatever_the_arrival_order() -> None:
    adm = make()
    holder = adm.enter("m", claim())
    batch = [adm.enter("m", claim("b", priority=BATCH)) for _ in range(3)]
    interactive = [adm.enter("m", claim("i")) for _ in range(3)]
    assert [t.claim.priority for t in serve(adm, [holder, *batch, *interactive], 6)] == [INTERACTIVE] * 3 + [BATCH] * 3


async def test_a_key_gets_at_most_its_allowed_class_and_it_by_default() -> None:
    nightly = Principal("nightly", frozenset({"*"}), weight=0.5, max_priority=BATCH)
    token = request_context.principal.set(nightly)
    try:
        assert Claim.of_caller(INTERACTIVE) == Claim("nightly", 0.5, BATCH, None)
        assert Claim.of_caller(None).priority is BATCH
    finally:
        request_context.principal.reset(token)
    assert Claim.of_caller(BATCH) == Claim("", 1.0, BATCH, None)  # no key: anonymous, any class
    assert Claim.of_caller(None).priority is INTERACTIVE


async def test_a_continuation_goes_to_the_head_even_of_a_full_queue() -> None:
    adm = make(max_length=3)
    holder = adm.enter("m", claim())
    waiting = [adm.enter("m", claim(k)) for k in "xyz"]
    with pytest.raises(Overloaded):
        adm.enter("m", claim("x"))
    continuation = adm.enter("m", claim("late"), urgent=True)
    assert continuation.queue.place(continuation) == (1, 4)
    assert serve(adm, [holder, *waiting, continuation], 1) == [continuation]


async def test_a_full_queue_refuses_with_retry_info_or_pushes_out_the_heaviest_key() -> None:
    registry = CollectorRegistry()
    adm = make(max_length=4, registry=registry)
    adm.enter("m", claim("heavy"))
    heavy = [adm.enter("m", claim("heavy")) for _ in range(3)]
    light = adm.enter("m", claim("light"))
    with pytest.raises(Overloaded) as refused:  # heavy's own excess is refused
        adm.enter("m", claim("heavy"))
    assert refused.value.retry_after_s > 0 and "full" in refused.value.message
    second_light = adm.enter("m", claim("light"))  # light has fewer waiting: heavy's latest makes room
    with pytest.raises(Overloaded) as pushed:
        [q async for q in heavy[-1].wait()]
    assert "pushed out" in pushed.value.message and not second_light.granted
    assert [t.claim.key for t in light.queue.waiters] == ["light", "heavy", "light", "heavy"]
    with pytest.raises(Overloaded):  # two each now: the tie keeps the waiters
        adm.enter("m", claim("light"))
    with pytest.raises(Overloaded):  # a batch arrival finds nobody less urgent to push out
        adm.enter("m", claim("b", priority=BATCH))
    counts = {r: registry.get_sample_value("llmmesh_inference_queue_refused_total",
                                           {"model": "m", "priority": "interactive", "reason": r})
              for r in ("full", "evicted")}
    assert counts == {"full": 2, "evicted": 1}


async def test_interactive_arrivals_push_batch_waiters_out_of_a_full_queue() -> None:
    adm = make(max_length=2)
    adm.enter("m", claim())
    batch = [adm.enter("m", claim("b", priority=BATCH)) for _ in range(2)]
    with pytest.raises(Overloaded):
        adm.enter("m", claim("b", priority=BATCH))
    urgent = adm.enter("m", claim("i"))
    assert urgent.queue.place(urgent) == (1, 2)
    with pytest.raises(Overloaded):
        [q async for q in batch[1].wait()]
    assert batch[0] in urgent.queue.waiters


async def test_a_wait_ends_at_the_queues_bound_with_retry_info_or_at_the_callers_deadline() -> None:
    registry = CollectorRegistry()
    a = backend("a")
    adm = make(a, max_wait_s=0.1, registry=registry)
    adm.enter("m", claim())
    late = adm.enter("m", claim())
    with pytest.raises(Overloaded) as err:
        [q async for q in late.wait()]
    assert err.value.retry_after_s > 0
    assert registry.get_sample_value("llmmesh_inference_queue_refused_total",
                                     {"model": "m", "priority": "interactive", "reason": "timeout"}) == 1
    hurried = adm.enter("m", claim(deadline=time.monotonic() + 0.05))
    with pytest.raises(DeadlineExceeded):
        [q async for q in hurried.wait()]
    assert late.queue.waiters == [] and a.in_flight == 1


async def test_many_cancelled_waiters_leave_no_waiter_and_no_slot_behind() -> None:
    registry = CollectorRegistry()
    a = backend("a")
    adm = make(a, cap=2, max_length=500, registry=registry)
    holders = [adm.enter("m", claim()), adm.enter("m", claim())]
    started = asyncio.Event()

    async def wait_for_a_slot(i: int) -> None:
        with adm.enter("m", claim(f"k{i % 7}", priority=BATCH if i % 2 else INTERACTIVE)) as ticket:
            async for _ in ticket.wait():
                started.set()
            await asyncio.sleep(3600)  # holds the slot until cancelled

    tasks = [asyncio.create_task(wait_for_a_slot(i)) for i in range(300)]
    await started.wait()
    await asyncio.sleep(0)
    assert len(holders[0].queue.waiters) == 300
    # Free one slot, and cancel everyone in the same instant: the one granted (not yet resumed)
    # must give the slot back like the others leave the queue.
    holders[0].close()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert holders[0].queue.waiters == [] and a.in_flight == 1
    for priority in ("interactive", "batch"):
        assert registry.get_sample_value("llmmesh_inference_queue_depth", {"model": "m", "priority": priority}) == 0
    holders[1].close()
    assert a.in_flight == 0
    with adm.enter("m", claim()) as fresh:
        assert fresh.granted


async def test_a_cancelled_waiter_gets_its_fair_share_cost_back() -> None:
    share = LocalFairShare()
    assert share.stamp("m/interactive", "k", 1.0) == 0.0
    assert share.stamp("m/interactive", "k", 1.0) == 1.0
    share.refund("m/interactive", "k", 1.0, 1.0)
    assert share.stamp("m/interactive", "k", 1.0) == 1.0  # its last stamp again
    share.served("m/interactive", "k", 5.0)
    assert share.stamp("m/interactive", "idle", 1.0) == 5.0  # an idle key banks no credit


async def test_position_updates_follow_the_queue_moving() -> None:
    adm = make()
    holder = adm.enter("m", claim())
    ahead, behind = adm.enter("m", claim("x")), adm.enter("m", claim("y"))
    seen: list[Queued] = []

    async def watch() -> None:
        async for place in behind.wait():
            seen.append(place)

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0.01)
    holder.close()  # ahead gets the slot: behind moves up, reported once the rate limit allows
    await eventually(lambda: len(seen) == 2)
    ahead.close()
    await asyncio.wait_for(watcher, 5)
    assert seen == [Queued(2, 2), Queued(1, 1)] and behind.granted


async def test_waiters_whose_backends_all_went_down_are_told_at_once() -> None:
    a = backend("a")
    adm = make(a)
    adm.enter("m", claim())
    waiter = adm.enter("m", claim())
    a.healthy = False
    adm.dispatch()
    with pytest.raises(Unavailable):
        [q async for q in waiter.wait()]
    with pytest.raises(Unavailable):  # and a new request is refused as before, not queued
        adm.enter("m", claim())
