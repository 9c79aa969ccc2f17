"""Admission: who gets a backend slot when every backend serving a model is at its in-flight cap.

Every attempt at a backend (a generation, a failover, an embedding) takes a slot through a Ticket.
A ticket that finds no free slot waits in its model's queue instead of being refused, in this order:

1. Continuations first, oldest first: a failover after tokens were delivered, or a retry before the
   first token. A started stream never ends for lack of a slot; these are not bounded by the
   queue's length (each already held a slot a moment ago).
2. Then strict priority: every interactive request before any batch one.
3. Within a class, fair share across API keys: start-time fair queuing, a weighted fair queuing
   whose bookkeeping is two numbers per key (llmmesh.inference.fair_share). A request costs
   1/weight of its key; the waiter with the smallest virtual start time goes first, so two busy
   keys of equal weight alternate whatever either has queued, and a key with weight 2 gets twice
   the slots of one with weight 1. A key idle for a while starts at the queue's virtual clock: it cannot bank credit.

The queue is bounded per model (LLMMESH_QUEUE_MAX_LENGTH, continuations aside). When it is full an
arrival pushes out the latest waiter of the key with the most waiters in a less urgent class, or in
its own class if that key has more waiters than the arrival's; otherwise the arrival itself is
refused: a flood fills the queue, but cannot keep another key out of it. Refusals are
RESOURCE_EXHAUSTED with RetryInfo (when the queue should have drained). A wait is bounded too: a
waiter still queued at LLMMESH_QUEUE_MAX_WAIT_S gets RESOURCE_EXHAUSTED, one whose caller's
deadline comes first DEADLINE_EXCEEDED at that deadline (gRPC ends the call then in any case; the
queue does not guess from service times). A cancelled caller leaves the queue at once
(`Ticket.close`, run by the `with` block).

While waiting, a ticket reports its place (`Ticket.wait` yields Queued): at once, then whenever it
changes, at most every UPDATE_INTERVAL_S. Grants happen synchronously whenever a slot frees or a
request arrives, so a slot is never idle while someone waits for it; waiters also look again every
RECHECK_S for a backend that recovered. The queue is per process; the fair-share accounts are too,
or, with Redis, shared by every replica (SharedFairShare: decided here at once, reconciled with
Redis behind; a waiter's place moves when Redis says its key has used more elsewhere).
"""

from __future__ import annotations

import asyncio
import bisect
import math
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from itertools import count

from llmmesh.common.model_call import Queued
from llmmesh.common.priority import Priority
from llmmesh.framework import request_context
from llmmesh.framework.errors import DeadlineExceeded, MeshError, Overloaded, Unavailable
from llmmesh.inference.breaker import Circuit
from llmmesh.inference.fair_share import FairShare, LocalFairShare
from llmmesh.inference.metrics import InferenceMetrics
from llmmesh.inference.pool import Backend, BackendPool

# Queue position updates are rate-limited to one per ticket per this many seconds.
UPDATE_INTERVAL_S = 0.25
# A waiter looks again at least this often: a backend may have recovered or its circuit half-opened,
# which frees no slot and so triggers no grant by itself.
RECHECK_S = 1.0
# Weight of the newest slot-holding time in the running estimate that RetryInfo delays come from.
_HOLD_EWMA = 0.2
_MIN_RETRY_S = 0.5


@dataclass(frozen=True)
class Claim:
    """Who asks for a slot, how urgently, and until when (a time.monotonic() deadline)."""

    key: str = ""
    weight: float = 1.0
    priority: Priority = Priority.INTERACTIVE
    deadline: float | None = None

    @classmethod
    def of_caller(cls, requested: Priority | None = None) -> Claim:
        """The current RPC's caller (request_context): its key and weight, the class it asked for
        capped by what its key allows (the key's own class when it asked for none), its deadline."""
        principal = request_context.principal.get()
        allowed = principal.max_priority if principal is not None else Priority.INTERACTIVE
        return cls(key=principal.name if principal is not None else "",
                   weight=principal.weight if principal is not None else 1.0,
                   priority=allowed if requested is None else requested.capped(allowed),
                   deadline=request_context.deadline.get())


class Ticket:
    """One attempt's claim on a slot: queued, then granted a backend, then released — or refused,
    expired or cancelled. `with ticket:` guarantees it leaves the queue or frees its slot."""

    def __init__(self, admission: Admission, queue: _ModelQueue, claim: Claim, avoid: frozenset[str],
                 never: frozenset[str], urgent: bool, order: tuple[int, float, int], cost: float) -> None:
        self._admission = admission
        self.queue = queue
        self.claim = claim
        self.avoid = avoid
        self.never = never
        self.urgent = urgent
        self.order = order
        self.cost = cost
        self.arrived = admission.clock()
        self.waited_s = 0.0
        self._granted: asyncio.Future[Backend] = asyncio.get_running_loop().create_future()
        self._moved: asyncio.Future[None] | None = None
        self._released = False
        # Granted as a half-open backend's one trial: released, the trial slot is free again.
        self.trial = False

    @property
    def lane(self) -> str:
        return _lane(self.queue.model, self.claim.priority)

    @property
    def granted(self) -> bool:
        """A slot is this ticket's (until it is closed)."""
        return self._granted.done() and not self._granted.cancelled() and self._granted.exception() is None

    @property
    def backend(self) -> Backend:
        """The granted backend (after `wait` returned)."""
        return self._granted.result()

    def __enter__(self) -> Ticket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def wait(self) -> AsyncIterator[Queued]:
        """Until a slot is granted: this ticket's place whenever it changes (rate-limited). Raises
        the refusal if it was pushed out, its backends went away, or its time ran out."""
        shown: tuple[int, int] | None = None
        next_update = 0.0
        while not self._granted.done():
            now = self._admission.clock()
            limit, by_deadline = self._limit()
            if now >= limit:
                self._admission.expire(self, by_deadline)
                break
            place = self.queue.place(self)
            if place != shown and now >= next_update:
                shown, next_update = place, now + UPDATE_INTERVAL_S
                yield Queued(*place)
                continue
            # Sleep until the grant or the limit, and, when an update may be sent, a move.
            waits: list[asyncio.Future[object]] = [self._granted]  # type: ignore[list-item]
            wake_at = limit
            if now >= next_update:
                self._moved = asyncio.get_running_loop().create_future()
                waits.append(self._moved)  # type: ignore[arg-type]
            else:
                wake_at = min(limit, next_update)
            await asyncio.wait(waits, timeout=min(RECHECK_S, max(0.0, wake_at - now)),
                               return_when=asyncio.FIRST_COMPLETED)
            if not self._granted.done() and self._admission.clock() - now >= RECHECK_S:
                self._admission.dispatch()
        self._granted.result()  # the refusal, if it was one

    def close(self) -> None:
        """Leave: out of the queue if still waiting, the slot freed if one was granted. Idempotent."""
        if not self._granted.done():
            self._admission.withdraw(self, None)
        elif self.granted and not self._released:
            self._released = True
            self._admission.release(self)

    # ---- called by Admission -------------------------------------------------------------------

    def _limit(self) -> tuple[float, bool]:
        """(when the wait must end, whether that is the caller's deadline)."""
        own = self.arrived + self._admission.max_wait_s
        deadline = self.claim.deadline
        return (deadline, True) if deadline is not None and deadline < own else (own, False)

    def _grant(self, backend: Backend) -> None:
        self.waited_s = self._admission.clock() - self.arrived
        self._granted.set_result(backend)

    def _end(self, exc: MeshError | None) -> None:
        """Unserved: refused with `exc`, or cancelled (None: the caller left)."""
        if self._granted.done():
            return
        if exc is None:
            self._granted.cancel()
        else:
            self._granted.set_exception(exc)
            self._granted.exception()  # retrieved: an unawaited refusal is not "never retrieved"

    def _signal_move(self) -> None:
        if self._moved is not None and not self._moved.done():
            self._moved.set_result(None)


class _ModelQueue:
    """The waiters for one model, kept in service order."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.waiters: list[Ticket] = []
        self.fresh = 0  # waiters the length bound applies to (not continuations)
        self.depth: Counter[Priority] = Counter()

    def insert(self, t: Ticket) -> None:
        i = bisect.bisect_left(self.waiters, t.order, key=_order)
        self.waiters.insert(i, t)
        self._count(t, 1)
        self._moved_from(i + 1)

    def remove(self, t: Ticket) -> bool:
        i = bisect.bisect_left(self.waiters, t.order, key=_order)
        if i >= len(self.waiters) or self.waiters[i] is not t:
            return False
        del self.waiters[i]
        self._count(t, -1)
        self._moved_from(i)
        return True

    def place(self, t: Ticket) -> tuple[int, int]:
        """(1-based position, queue length)."""
        return bisect.bisect_left(self.waiters, t.order, key=_order) + 1, len(self.waiters)

    def _count(self, t: Ticket, delta: int) -> None:
        self.fresh += 0 if t.urgent else delta
        self.depth[t.claim.priority] += delta

    def _moved_from(self, i: int) -> None:
        for t in self.waiters[i:]:
            t._signal_move()


def _order(t: Ticket) -> tuple[int, float, int]:
    return t.order


def _lane(model: str, priority: Priority) -> str:
    """The fair-share account's scope: keys compete per model and class."""
    return f"{model}/{priority.label}"


class Admission:
    def __init__(self, pool: BackendPool, metrics: InferenceMetrics, max_length: int, max_wait_s: float,
                 fair_share: FairShare | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.pool = pool
        self.metrics = metrics
        self.max_length = max_length
        self.max_wait_s = max_wait_s
        self.fair_share = fair_share or LocalFairShare()
        self.clock = clock
        self._queues: dict[str, _ModelQueue] = {}
        self._seq = count()
        # Per model: running estimate of how long a slot is held, for RetryInfo delays.
        self._hold_s: dict[str, float] = {}

    def enter(self, model: str, claim: Claim, *, avoid: frozenset[str] = frozenset(),
              never: frozenset[str] = frozenset(), urgent: bool = False) -> Ticket:
        """A ticket for a slot of `model`, granted at once if one is free and nobody is ahead.
        `avoid`: backends to use only if no other is usable (already tried); `never`: not at all;
        `urgent`: a continuation or retry, served first. Raises Overloaded when the queue is full,
        Unavailable/NotFound when no backend can serve the model at all."""
        queue = self._queues.setdefault(model, _ModelQueue(model))
        seq = next(self._seq)
        if urgent:  # first of all, in arrival order; no fair-share charge (it was charged on arrival)
            order, cost = (0, 0.0, seq), 0.0
        else:  # by class, then by virtual start time (`ticket` is bound by the time a restamp comes)
            cost = 1.0 / claim.weight
            start = self.fair_share.stamp(_lane(model, claim.priority), claim.key, cost,
                                          lambda shared: self._restamp(ticket, shared))
            order = (1 + claim.priority, start, seq)
        ticket = Ticket(self, queue, claim, avoid, never, urgent, order, cost)
        queue.insert(ticket)
        self._publish_depth(queue)
        self._drain(queue)
        if ticket._granted.done():
            ticket._granted.result()  # no backend at all: raised before any queue event
            return ticket
        if not urgent and queue.fresh > self.max_length:
            victim = self._victim(queue, ticket)
            self._turn_away(victim or ticket, "evicted" if victim else "full")
            if victim is None:
                ticket._granted.result()
        return ticket

    async def close(self) -> None:
        await self.fair_share.close()

    def waiting(self, model: str) -> int:
        """Requests waiting for a slot of `model`."""
        queue = self._queues.get(model)
        return len(queue.waiters) if queue is not None else 0

    def dispatch(self) -> None:
        """Grant every slot that can be granted (a slot freed, a backend came back)."""
        for queue in sorted((q for q in self._queues.values() if q.waiters),
                            key=lambda q: (q.waiters[0].order[0], q.waiters[0].arrived)):
            self._drain(queue)

    # ---- ticket life cycle ---------------------------------------------------------------------

    def release(self, t: Ticket) -> None:
        backend = t.backend
        backend.in_flight -= 1
        if t.trial:
            backend.breaker.on_abandon()  # a no-op once the attempt was judged; else the trial is free
        self.metrics.in_flight.labels(backend.name).set(backend.in_flight)
        held = self.clock() - t.arrived - t.waited_s
        previous = self._hold_s.get(t.queue.model)
        self._hold_s[t.queue.model] = held if previous is None else previous + _HOLD_EWMA * (held - previous)
        self.dispatch()

    def withdraw(self, t: Ticket, exc: MeshError | None) -> None:
        """A waiter leaves unserved: refused with `exc`, or cancelled (None)."""
        if t.queue.remove(t):
            if not t.urgent:
                self.fair_share.refund(t.lane, t.claim.key, t.order[1], t.cost)
            self._publish_depth(t.queue)
        t._end(exc)

    def expire(self, t: Ticket, by_deadline: bool) -> None:
        waited = self.clock() - t.arrived
        if by_deadline:
            self.withdraw(t, DeadlineExceeded(
                f"deadline exceeded after {waited:.1f} s waiting for a backend slot for model {t.queue.model!r}"))
            return
        self.metrics.queue_refused.labels(t.queue.model, t.claim.priority.label, "timeout").inc()
        self.withdraw(t, Overloaded(f"no backend slot for model {t.queue.model!r} within {self.max_wait_s:g} s",
                                    self._retry_after(t.queue)))

    # ---- internals ----------------------------------------------------------------------------

    def _drain(self, queue: _ModelQueue) -> None:
        i = 0
        while i < len(queue.waiters):
            t = queue.waiters[i]
            try:
                backend = self._place(t)
            except MeshError as exc:  # no backend can serve it now (down, or the model is gone)
                self.withdraw(t, exc)
                continue
            if backend is None:
                if not (t.avoid or t.never):
                    break  # every usable backend is full: nobody behind can be placed either
                i += 1
                continue
            queue.remove(t)
            self._grant(t, backend)
        self._publish_depth(queue)

    def _place(self, t: Ticket) -> Backend | None:
        """A backend with a free slot for `t`, None if all are full; raises if none is usable."""
        try:
            try:
                return self.pool.pick(t.queue.model, exclude=set(t.avoid | t.never))
            except Unavailable:
                if not t.avoid:
                    raise
                # Every other backend is down: one already tried may still be worth a retry.
                return self.pool.pick(t.queue.model, exclude=set(t.never))
        except Overloaded:
            return None

    def _grant(self, t: Ticket, backend: Backend) -> None:
        backend.in_flight += 1
        # Taken now, not when the attempt starts: the same pass must not grant a second trial.
        t.trial = backend.breaker.state is Circuit.HALF_OPEN
        backend.breaker.on_attempt()
        self.metrics.in_flight.labels(backend.name).set(backend.in_flight)
        if not t.urgent:
            self.fair_share.served(t.lane, t.claim.key, t.order[1])
        t._grant(backend)
        self.metrics.queue_wait.labels(t.queue.model, t.claim.priority.label).observe(t.waited_s)

    def _restamp(self, t: Ticket, start: float) -> bool:
        """The shared account gave waiter `t` another virtual start: it takes its place by that one.
        False if it no longer waits. No slot frees by this, so nothing is granted."""
        if not t.queue.remove(t):
            return False
        t.order = (t.order[0], start, t.order[2])
        t.queue.insert(t)
        return True

    def _victim(self, queue: _ModelQueue, arrival: Ticket) -> Ticket | None:
        """Who makes room for `arrival` in a full queue: the latest waiter of the least urgent class
        below the arrival's; within the arrival's own class, the latest of the key with the most
        waiters if it has more than the arrival's key. None: the arrival is the one refused."""
        fresh = [t for t in queue.waiters if not t.urgent and t is not arrival]
        if not fresh:
            return None
        worst = max(t.claim.priority for t in fresh)
        if worst < arrival.claim.priority:
            return None
        same = [t for t in fresh if t.claim.priority == worst]
        per_key = Counter(t.claim.key for t in same)
        heaviest, most = per_key.most_common(1)[0]
        if worst == arrival.claim.priority and most <= per_key[arrival.claim.key] + 1:
            return None
        return max((t for t in same if t.claim.key == heaviest), key=_order)

    def _turn_away(self, t: Ticket, reason: str) -> None:
        self.metrics.queue_refused.labels(t.queue.model, t.claim.priority.label, reason).inc()
        why = "full; this request was pushed out for a key with fewer waiting" if reason == "evicted" else "full"
        self.withdraw(t, Overloaded(f"the admission queue for model {t.queue.model!r} is {why} "
                                    f"({self.max_length} waiting)", self._retry_after(t.queue)))

    def _retry_after(self, queue: _ModelQueue) -> float:
        """When the queue ahead should have drained: its length over the slots, times a slot's hold."""
        slots = sum(self.pool.capacity(b) for b in self.pool.backends if b.serves(queue.model) and b.usable())
        hold = self._hold_s.get(queue.model, _MIN_RETRY_S)  # nothing held yet: the shortest delay
        rounds = math.ceil(max(1, len(queue.waiters)) / max(1, slots))
        return min(max(_MIN_RETRY_S, hold * rounds), self.max_wait_s)

    def _publish_depth(self, queue: _ModelQueue) -> None:
        for p in Priority:
            self.metrics.queue_depth.labels(queue.model, p.label).set(queue.depth[p])
