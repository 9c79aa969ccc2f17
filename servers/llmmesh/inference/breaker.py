"""A per-backend circuit breaker: closed → open after N consecutive failures → half-open after a
cool-down, where one trial request decides between closed and open again."""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum


class Circuit(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(self, failures_to_open: int, open_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._threshold = failures_to_open
        self._clock = clock  # injectable, so a test can step through the cool-down
        self._open_s = open_seconds
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_in_flight = False

    @property
    def state(self) -> Circuit:
        if self._opened_at is None:
            return Circuit.CLOSED
        if self._clock() - self._opened_at < self._open_s:
            return Circuit.OPEN
        return Circuit.HALF_OPEN

    def retry_after(self) -> float:
        if self._opened_at is None:
            return 0.0
        return max(0.0, self._open_s - (self._clock() - self._opened_at))

    def allows(self) -> bool:
        state = self.state
        return state is Circuit.CLOSED or (state is Circuit.HALF_OPEN and not self._trial_in_flight)

    def on_attempt(self) -> None:
        if self.state is Circuit.HALF_OPEN:
            self._trial_in_flight = True

    def on_success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._trial_in_flight = False

    def on_abandon(self) -> None:
        """The attempt was cancelled by its caller: free the half-open trial slot, judge nothing."""
        self._trial_in_flight = False

    def on_failure(self) -> None:
        self._failures += 1
        self._trial_in_flight = False
        if self.state is Circuit.HALF_OPEN or self._failures >= self._threshold:
            self._opened_at = self._clock()
