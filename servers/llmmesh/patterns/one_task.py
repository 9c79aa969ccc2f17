"""Keep a pattern's event generator in one task, so its context variables hold across yields.

A pattern's event generator sets context variables that must hold across its yields
(`metered()` above all). Async generators have no context of their own: each step runs in the
context of whoever resumes it, and `run_bidi` (through `BidiSession.until_interrupted`) resumes
each step in a new task, i.e. a fresh copy of the context. Without this, usage counted after the
first step is lost and leaving `metered()` fails with "token was created in a different Context".
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TypeVar

from llmmesh.patterns.fanout import fan_in

T = TypeVar("T")


def in_one_task(stream: AsyncIterator[T]) -> AsyncIterator[T]:
    """Events of `stream`, produced by one dedicated task; cancelling or closing the result
    cancels that task (and so the model call it is in)."""
    return fan_in(stream)
