"""The one servicer of every pattern: a pattern declares how its request is built, how it runs and
how its events become protobuf (`Pattern`); `PatternServicer` serves both of its faces from that.

- Unary: build the request, run it until its result (the run's last event), convert the result.
- Bidirectional stream: the first message starts the run (`run_bidi`), each event is converted as
  it comes, a Cancel ends the run.
- Limits: every request is built under the server's PatternLimits (`Intake`), with its fields
  named as the caller sent them ("evaluate.question" on the stream).
- Usage: a run meters its own model calls and its result carries the meter, so a run called
  directly (a unit test, another pattern) reports exactly the usage its RPC does.

A service's other RPCs (ListCriteria, ListTools) stay plain methods of its servicer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Self, TypeVar

from google.protobuf.message import Message

from llmmesh.framework.bidi import BidiSession
from llmmesh.framework.services import ServiceDeps
from llmmesh.patterns.model_client import ModelClient
from llmmesh.patterns.streams import run_bidi
from llmmesh.settings import PatternLimits
from llmmesh.tools.registry import ToolRegistry

Req = TypeVar("Req")
Event = TypeVar("Event")
Result = TypeVar("Result")


@dataclass(frozen=True)
class Intake:
    """What building a validated request may use besides its message."""

    limits: PatternLimits
    # Where the request's fields are, for errors: "" on the unary call, "<start>." on the stream.
    prefix: str = ""
    # The stream, for runs that read more of it (plan decisions, human turns); None on the unary call.
    session: BidiSession[Any] | None = None
    # The server's tools, for patterns that call them.
    tools: ToolRegistry | None = None

    @property
    def streaming(self) -> bool:
        return self.session is not None


@dataclass(frozen=True)
class Pattern(Generic[Req, Event, Result]):
    """A pattern as its servicer declares it."""

    # The field of the stream's first message that starts the run ("evaluate", "run", …).
    start: str
    # Message → validated request; InvalidArgument naming every bad field otherwise.
    request: Callable[[Any, Intake], Awaitable[Req]]
    # Every event of the run; the last one is its result.
    run: Callable[[ModelClient, Req], AsyncIterator[Event]]
    result: type[Result]
    # The result as the unary response.
    response: Callable[[Result], Message]
    # Any event (the result included) as a stream message.
    stream_event: Callable[[Event], Message]


async def result_of(events: AsyncIterator[Any], result: type[Result]) -> Result:
    """The run's result: its events are consumed until it comes, then the run is closed."""
    async with aclosing(events):  # type: ignore[type-var]
        async for event in events:
            if isinstance(event, result):
                return event
    raise RuntimeError(f"the run ended without its {result.__name__}")


class PatternServicer:
    """Subclasses declare `pattern` and name its two faces after their RPCs
    (`Evaluate = PatternServicer.unary`, `EvaluateStream = PatternServicer.stream`)."""

    pattern: ClassVar[Pattern[Any, Any, Any]]

    def __init__(self, client: ModelClient, limits: PatternLimits) -> None:
        self.client = client
        self.limits = limits

    @classmethod
    def build(cls, deps: ServiceDeps) -> Self:
        return cls(ModelClient(deps.inference_target, deps.identity), deps.settings.limits)

    async def close(self) -> None:
        await self.client.close()

    def intake(self, prefix: str = "", session: BidiSession[Any] | None = None) -> Intake:
        return Intake(self.limits, prefix, session)

    async def unary(self, request: Message, context: Any) -> Message:
        p = self.pattern
        req = await p.request(request, self.intake())
        return p.response(await result_of(p.run(self.client, req), p.result))

    async def stream(self, requests: AsyncIterator[Message], context: Any) -> AsyncIterator[Message]:
        async for message in run_bidi(requests, self.pattern.start, self._converted):
            yield message

    async def _converted(self, start: Message, session: BidiSession[Any]) -> AsyncIterator[Message]:
        p = self.pattern
        req = await p.request(start, self.intake(f"{p.start}.", session))
        async for event in p.run(self.client, req):
            yield p.stream_event(event)


class ToolPatternServicer(PatternServicer):
    """A pattern whose runs call the server's tools."""

    def __init__(self, client: ModelClient, limits: PatternLimits) -> None:
        super().__init__(client, limits)
        self.tools = ToolRegistry(limits)

    async def close(self) -> None:
        await super().close()
        await self.tools.close()

    def intake(self, prefix: str = "", session: BidiSession[Any] | None = None) -> Intake:
        return Intake(self.limits, prefix, session, self.tools)
