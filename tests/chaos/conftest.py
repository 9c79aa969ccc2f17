"""The chaos drills' marker: `slow` drills run in ./scripts/test like everything else (each is
bounded by its own timeout); `-m "not slow"` leaves them out of a quick local run."""

from __future__ import annotations


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "slow: a chaos or soak drill that takes tens of seconds")
