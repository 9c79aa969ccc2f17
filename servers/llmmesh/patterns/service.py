"""The one servicer of every pattern: a pattern declares how its request is built, how it runs and
how its events become protobuf (`Pattern`); `PatternServicer` serves both of its faces from that.

- Unary: build the request, run it until its result (the run's last event), convert the result.
- Bidirectional stream: the first message starts the run (`run_bidi`), each event is converted as
  it comes, a Cancel ends the run.
- Limits: every request is built under the server's PatternLimits (`Intake`), with its fields
  named as the caller sent them ("evaluate.question" on the stream).
- Usage: a run meters its own model calls and its result carries the meter, so a run called
  directly (a unit test, another pattern) reports exactly the usage its RPC does.
- The run store: every run gets an id (`run_id` in the response and the `result` event, and the
  `x-llmmesh-run-id` header, or trailer when it fails) and is recorded — request, events, result
  or error, usage, models and backends, caller — then handed to the run store's background writer
  (llmmesh.runs.log) unless the request says `store: false`. Invalid requests are not runs.

A service's other RPCs (ListCriteria, ListTools) stay plain methods of its servicer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Self, TypeVar

from google.protobuf.message import Message

from llmmesh.framework import request_context, tracing
from llmmesh.framework.bidi import BidiSession
from llmmesh.framework.services import ServiceDeps
from llmmesh.patterns.model_client import ModelClient, UsageMeter, metered
from llmmesh.patterns.presets import Presets
from llmmesh.patterns.streams import cancelled, run_bidi
from llmmesh.runs.capture import RunCapture
from llmmesh.runs.log import RunLog
from llmmesh.settings import PatternLimits
from llmmesh.tools.registry import ToolRegistry
from llmmesh.topology.description import RUN_ID_HEADER

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
    # The server's named analysis presets, for requests that may name one.
    presets: Presets = field(default_factory=Presets)

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
    (`Evaluate = PatternServicer.unary`, `EvaluateStream = PatternServicer.stream`).

    Every pattern's messages share a shape the recording relies on: the request has `optional bool
    store`, the response a `run_id`, and the stream's final event is its `result`."""

    pattern: ClassVar[Pattern[Any, Any, Any]]

    def __init__(self, client: ModelClient, limits: PatternLimits, runs: RunLog | None = None,
                 presets: Presets | None = None) -> None:
        self.client = client
        self.limits = limits
        # None: runs get their ids but are stored nowhere (a servicer built by hand, in a test).
        self.runs = runs
        self.presets = presets or Presets()

    @classmethod
    def build(cls, deps: ServiceDeps) -> Self:
        return cls(ModelClient(deps.inference_target, deps.identity), deps.settings.limits, deps.runs, deps.presets)

    async def start(self) -> None:
        if self.runs is not None:
            await self.runs.start()

    async def close(self) -> None:
        await self.client.close()

    def intake(self, prefix: str = "", session: BidiSession[Any] | None = None) -> Intake:
        return Intake(self.limits, prefix, session, presets=self.presets)

    async def unary(self, request: Message, context: Any) -> Message:
        p = self.pattern
        req = await p.request(request, self.intake())
        run = self._capture(request, streamed=False)
        with metered() as meter:
            try:
                result = await result_of(self._recorded(p.run(self.client, req), run), p.result)
                response = p.response(result)
                response.run_id = run.run_id
            except BaseException as exc:
                self._failed(run, exc, meter, context)
                self._submit(run)
                raise
        run.succeeded(response, meter)
        self._submit(run)
        if context is not None:
            await context.send_initial_metadata(((RUN_ID_HEADER, run.run_id),))
        return response

    async def stream(self, requests: AsyncIterator[Message], context: Any) -> AsyncIterator[Message]:
        def converted(start: Message, session: BidiSession[Any]) -> AsyncIterator[Message]:
            return self._converted(start, session, context)

        async for message in run_bidi(requests, self.pattern.start, converted):
            yield message

    async def _converted(self, start: Message, session: BidiSession[Any], context: Any) -> AsyncIterator[Message]:
        p = self.pattern
        req = await p.request(start, self.intake(f"{p.start}.", session))
        run = self._capture(start, streamed=True)
        first = True
        with metered() as meter:
            try:
                async for event in p.run(self.client, req):
                    message = p.stream_event(event)
                    if isinstance(event, p.result):
                        message.result.run_id = run.run_id
                        run.succeeded(message.result, meter)
                    else:
                        run.event(message)
                    if first and context is not None:
                        # Before the first event, so REST clients get it as a response header.
                        await context.send_initial_metadata(((RUN_ID_HEADER, run.run_id),))
                    first = False
                    yield message
            except BaseException as exc:
                if not run.finished:
                    # The pump was cancelled by the client's Cancel: record it with its reason.
                    interrupted = isinstance(exc, asyncio.CancelledError) and session.interrupt.is_set()
                    self._failed(run, cancelled(session) if interrupted else exc, meter, context)
                raise
            finally:
                self._submit(run)

    def _capture(self, request: Message, *, streamed: bool) -> RunCapture:
        """A new run of `request` (its pattern and method read off the message's type)."""
        pattern = request.DESCRIPTOR.file.package.split(".")[1]  # llmmesh.judge.v1 → judge
        method = request.DESCRIPTOR.name.removesuffix("Request") + ("Stream" if streamed else "")
        who = request_context.principal.get()
        keep = not request.HasField("store") or request.store  # type: ignore[attr-defined]
        principal = who.name if who is not None else ""
        if self.runs is None:
            run = RunCapture(pattern, method, request, principal, keep=False)
        else:
            run = self.runs.capture(pattern, method, request, principal, keep=keep)
        # On the RPC's server span: a trace found in Jaeger leads to the stored run, and back.
        tracing.current_attributes({"llmmesh.run_id": run.run_id, "llmmesh.pattern": pattern})
        return run

    async def _recorded(self, events: AsyncIterator[Any], run: RunCapture) -> AsyncIterator[Any]:
        """The run's events, each recorded as the stream would send it (the result is recorded apart)."""
        p = self.pattern
        async with aclosing(events):  # type: ignore[type-var]
            async for event in events:
                if not isinstance(event, p.result):
                    run.event(p.stream_event(event))
                yield event

    @staticmethod
    def _failed(run: RunCapture, exc: BaseException, meter: UsageMeter, context: Any) -> None:
        run.failed(exc, meter)
        if context is not None:
            # Kept by the error interceptor's abort: a failed run's id reaches the client too.
            context.set_trailing_metadata(((RUN_ID_HEADER, run.run_id),))

    def _submit(self, run: RunCapture) -> None:
        if self.runs is not None and run.finished:
            self.runs.submit(run)


class ToolPatternServicer(PatternServicer):
    """A pattern whose runs call the server's tools."""

    def __init__(self, client: ModelClient, limits: PatternLimits, runs: RunLog | None = None,
                 presets: Presets | None = None) -> None:
        super().__init__(client, limits, runs, presets)
        self.tools = ToolRegistry(limits)

    async def close(self) -> None:
        await super().close()
        await self.tools.close()

    def intake(self, prefix: str = "", session: BidiSession[Any] | None = None) -> Intake:
        return Intake(self.limits, prefix, session, self.tools, self.presets)
