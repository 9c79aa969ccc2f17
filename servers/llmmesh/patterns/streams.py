"""The bidirectional face every pattern shares: the first message starts the run, a Cancel ends
it (CANCELLED, as an error event), other messages (plan decisions, human turns) are handed to the
run through its session."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from llmmesh.framework.bidi import BidiSession, Interrupted
from llmmesh.framework.errors import Cancelled, FieldViolation, InvalidArgument

E = TypeVar("E")


async def run_bidi(requests: AsyncIterator[Any], start: str,
                   run: Callable[[Any, BidiSession[Any]], AsyncIterator[E]],
                   interrupt: str = "cancel") -> AsyncIterator[E]:
    session: BidiSession[Any] = BidiSession(requests, lambda r: r.WhichOneof("action") == interrupt)
    async with session:
        first = await session.next()
        if first is None or first.WhichOneof("action") != start:
            raise InvalidArgument([FieldViolation(start, f"the first message on the stream must set '{start}'")])
        async for event in session.until_interrupted(run(getattr(first, start), session)):
            if isinstance(event, Interrupted):
                raise cancelled(session, interrupt)
            yield event


def cancelled(session: BidiSession[Any], interrupt: str = "cancel") -> Cancelled:
    """What the client's Cancel ends the run with, its reason included."""
    reason = getattr(getattr(session.last_interrupt, interrupt, None), "reason", "") or "no reason given"
    return Cancelled(f"cancelled by the client: {reason}")
