"""Run limits: callers may lower a server maximum, never raise it (INVALID_ARGUMENT if they try)."""

from __future__ import annotations

from llmmesh.framework.validation import Violations


def bounded(requested: int | None, field: str, *, default: int, maximum: int, v: Violations,
            minimum: int = 1) -> int:
    """The caller's value if given and within [minimum, maximum], else the default; a value out of
    range is recorded as a violation naming the server maximum."""
    if requested is None:
        return min(default, maximum)
    if requested < minimum or requested > maximum:
        v.add(field, f"must be between {minimum} and the server maximum {maximum}")
        return min(default, maximum)
    return requested
