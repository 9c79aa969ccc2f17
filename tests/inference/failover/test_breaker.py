"""The per-backend circuit breaker through its states, on a clock the test moves:
closed → open after N consecutive failures → half-open after the cool-down → closed or open
again on one trial request."""

from __future__ import annotations

import pytest

from llmmesh.inference.breaker import Circuit, CircuitBreaker
from tests.support.clock import FakeClock


def opened(clock: FakeClock, failures: int = 3, open_s: float = 5.0) -> CircuitBreaker:
    breaker = CircuitBreaker(failures, open_s, clock=clock)
    for _ in range(failures):
        breaker.on_attempt()
        breaker.on_failure()
    return breaker


def test_it_opens_only_after_n_consecutive_failures() -> None:
    breaker = CircuitBreaker(3, 5.0, clock=FakeClock())
    for _ in range(2):
        breaker.on_failure()
    breaker.on_success()  # a success in between starts the count again
    for _ in range(2):
        breaker.on_failure()
    assert breaker.state is Circuit.CLOSED and breaker.allows() and breaker.retry_after() == 0.0
    breaker.on_failure()
    assert breaker.state is Circuit.OPEN and not breaker.allows()


def test_an_open_circuit_says_when_to_come_back_and_goes_half_open_after_the_cool_down() -> None:
    clock = FakeClock()
    breaker = opened(clock)
    clock.advance(2.0)
    assert breaker.state is Circuit.OPEN and breaker.retry_after() == pytest.approx(3.0)
    clock.advance(3.0)
    assert breaker.state is Circuit.HALF_OPEN and breaker.allows() and breaker.retry_after() == 0.0


def test_half_open_lets_one_trial_through_and_its_success_closes_the_circuit() -> None:
    clock = FakeClock()
    breaker = opened(clock)
    clock.advance(5.0)
    breaker.on_attempt()
    assert breaker.state is Circuit.HALF_OPEN and not breaker.allows()  # the trial is in flight
    breaker.on_success()
    assert breaker.state is Circuit.CLOSED and breaker.allows()
    breaker.on_failure()  # the count started again: one failure does not reopen it
    assert breaker.state is Circuit.CLOSED


def test_a_failed_trial_reopens_the_circuit_for_a_full_cool_down() -> None:
    clock = FakeClock()
    breaker = opened(clock)
    clock.advance(6.0)
    breaker.on_attempt()
    breaker.on_failure()
    assert breaker.state is Circuit.OPEN and breaker.retry_after() == pytest.approx(5.0)
    clock.advance(5.0)
    assert breaker.state is Circuit.HALF_OPEN


def test_an_abandoned_trial_frees_the_slot_and_judges_nothing() -> None:
    clock = FakeClock()
    breaker = opened(clock, failures=1)
    clock.advance(5.0)
    breaker.on_attempt()
    assert not breaker.allows()
    breaker.on_abandon()
    assert breaker.state is Circuit.HALF_OPEN and breaker.allows()
