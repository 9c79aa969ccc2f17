"""Bidirectional streams as objects: a chat session, and pattern runs with their controls.

`AsyncChatSession` keeps one `InferenceService.Chat` stream open across turns (the server holds
the history). `send()` yields the events of one turn and ends at its `done`; `stop()` ends the
generation in progress without closing the session. One turn at a time: leaving a turn early
stops its generation, and its remaining events are skipped.

`AsyncRunStream` is one pattern run: iterate it for typed events until the terminal `result`;
`cancel()` sends the pattern's Cancel. `AsyncPlanRun` adds approve/edit/reject for a plan that
awaits approval, `AsyncCollaborationRun` adds a human turn. An `error` event is raised as the
matching `LlmMeshError`. Each class has a sync twin (same methods, blocking) built by
`llmmesh_client.blocking`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any, Generic, TypeVar

import grpc
from google.protobuf.message import Message

from llmmesh_client._proto.llmmesh.collaboration.v1 import collaboration_service_pb2 as collab_pb
from llmmesh_client._proto.llmmesh.common.v1 import common_pb2
from llmmesh_client._proto.llmmesh.inference.v1 import inference_service_pb2 as pb
from llmmesh_client._proto.llmmesh.planexecute.v1 import planexecute_service_pb2 as plan_pb
from llmmesh_client.blocking import Facade, LoopThread, SyncIterator, blocking, iterating
from llmmesh_client.convert import build
from llmmesh_client.errors import LlmMeshError, UnavailableError, from_status
from llmmesh_client.transport import BidiCall, raise_if_error

E = TypeVar("E", bound=Message)
MessageLike = pb.Message | Mapping[str, Any] | tuple[str, str]

_CLOSE_GRACE_S = 5.0


class AsyncChatSession:
    """A conversation on one Chat stream. Use `async with` (or `aclose()`) to end it."""

    def __init__(self, call: BidiCall, *, model: str = "", system: str = "",
                 options: common_pb2.GenerationOptions | Mapping[str, Any] | None = None,
                 tools: Sequence[pb.Tool | Mapping[str, Any]] | None = None,
                 json_schema: Mapping[str, Any] | None = None) -> None:
        self._call = call
        self._defaults: dict[str, Any] = {"model": model, "options": options, "tools": tools,
                                          "json_schema": json_schema}
        self._system = system
        self._system_pending = bool(system)  # sent with the first turn, and again after reset()
        self._turns = 0
        self._active = False

    @property
    def request_id(self) -> str:
        return self._call.request_id

    @property
    def turns(self) -> int:
        return self._turns

    @property
    def is_open(self) -> bool:
        """False once the stream itself has ended (a failed turn leaves it open)."""
        return not self._call.done

    def send(self, content: str | None = None, *, messages: Sequence[MessageLike] = (), model: str | None = None,
             options: common_pb2.GenerationOptions | Mapping[str, Any] | None = None,
             tools: Sequence[pb.Tool | Mapping[str, Any]] | None = None,
             json_schema: Mapping[str, Any] | None = None) -> AsyncIterator[pb.ChatResponse]:
        """Send one turn (`content` as a user message, after any `messages`) and yield its events:
        deltas, tool calls, then `done` (done_reason "cancelled" after `stop()`). A failed turn
        raises; the session stays usable."""
        msgs: list[MessageLike] = list(messages)
        if content is not None:
            msgs.append(("user", content))
        overrides = {"model": model, "options": options, "tools": tools, "json_schema": json_schema}
        fields = {**self._defaults, **{k: v for k, v in overrides.items() if v is not None}, "messages": msgs}
        return self._turn(build(pb.ChatTurn, fields))

    async def _turn(self, turn: pb.ChatTurn) -> AsyncIterator[pb.ChatResponse]:
        if self._system_pending:
            turn.messages.insert(0, build(pb.Message, {"role": "system", "content": self._system}))
        await self._call.write(pb.ChatRequest(turn=turn))
        self._system_pending = False
        self._turns += 1
        number, finished, self._active = self._turns, False, True
        try:
            while True:
                event = await self._call.read()
                if event is None:
                    raise UnavailableError(grpc.StatusCode.UNAVAILABLE, "the chat stream ended during a turn",
                                           request_id=self.request_id)
                if event.turn != number:
                    continue  # the tail of an earlier turn the caller stopped reading
                if event.HasField("error"):
                    finished = True
                    raise from_status(event.error, self.request_id)
                yield event
                if event.HasField("done"):
                    finished = True
                    return
        finally:
            self._active = False
            if not finished:  # the caller left mid-turn: stop the generation it no longer reads
                with contextlib.suppress(LlmMeshError):
                    await self.stop()

    async def stop(self) -> None:
        """End the generation in progress (no-op when none is); the session stays open."""
        await self._call.write_if_open(pb.ChatRequest(control=pb.ChatControl(action=pb.CHAT_CONTROL_ACTION_STOP)))

    async def reset(self) -> None:
        """Forget the conversation history kept by the server."""
        await self._call.write(pb.ChatRequest(control=pb.ChatControl(action=pb.CHAT_CONTROL_ACTION_RESET)))
        self._system_pending = bool(self._system)

    async def aclose(self) -> None:
        """Half-close and let the server finish; a generation still running is cancelled."""
        if not self._call.started:
            return
        if self._active:
            self._call.cancel()
            return
        await self._call.done_writing()
        try:
            async with asyncio.timeout(_CLOSE_GRACE_S):
                while await self._call.read() is not None:
                    pass
        except (TimeoutError, LlmMeshError):
            pass
        finally:
            self._call.cancel()

    async def __aenter__(self) -> AsyncChatSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class AsyncRunStream(Generic[E]):
    """One pattern run on a bidi stream. Iterate for events; the last one carries `result`."""

    def __init__(self, call: BidiCall, start: Message, cancel: Callable[[str], Message]) -> None:
        self._call = call
        self._start = start
        self._cancel = cancel
        self._started = False
        self._start_lock = asyncio.Lock()
        self._events: AsyncIterator[E] | None = None
        self.result_event: E | None = None

    @property
    def request_id(self) -> str:
        return self._call.request_id

    async def _ensure_started(self) -> None:
        async with self._start_lock:
            if not self._started:
                self._started = True
                await self._call.write(self._start)

    def __aiter__(self) -> AsyncIterator[E]:
        if self._events is None:
            self._events = self._iterate()
        return self._events

    async def _iterate(self) -> AsyncIterator[E]:
        await self._ensure_started()
        finished = False
        try:
            while (event := await self._call.read()) is not None:
                raise_if_error(event, self.request_id)
                if event.HasField("result"):
                    finished = True
                    self.result_event = event
                    yield event
                    await self._call.done_writing()
                    return
                yield event
            raise UnavailableError(grpc.StatusCode.UNAVAILABLE, "the stream ended without a result",
                                   request_id=self.request_id)
        finally:
            if not finished:
                self._call.cancel()

    async def result(self) -> Any:
        """Read the remaining events and return the final result message."""
        async for _ in self:
            pass
        if self.result_event is None:
            raise UnavailableError(grpc.StatusCode.UNAVAILABLE, "the stream ended without a result",
                                   request_id=self.request_id)
        return self.result_event.result  # type: ignore[attr-defined]

    async def cancel(self, reason: str = "") -> None:
        """Ask the server to stop the run; the stream then raises CancelledError."""
        if self._started:
            await self._call.write_if_open(self._cancel(reason))

    async def _send(self, request: Message) -> None:
        await self._ensure_started()
        await self._call.write(request)

    async def aclose(self) -> None:
        if self._events is not None and hasattr(self._events, "aclose"):
            await self._events.aclose()  # type: ignore[attr-defined]
        if self.result_event is None:
            self._call.cancel()

    async def __aenter__(self) -> AsyncRunStream[E]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class AsyncPlanRun(AsyncRunStream[plan_pb.RunStreamResponse]):
    """A plan-and-execute run; with `require_approval` the plan waits for one of these."""

    async def approve(self, comment: str = "") -> None:
        await self._decide(plan_pb.PLAN_DECISION_ACTION_APPROVE, None, comment)

    async def edit(self, plan: plan_pb.Plan | Mapping[str, Any], comment: str = "") -> None:
        """Run `plan` instead of the proposed one."""
        await self._decide(plan_pb.PLAN_DECISION_ACTION_EDIT, plan, comment)

    async def reject(self, comment: str = "") -> None:
        await self._decide(plan_pb.PLAN_DECISION_ACTION_REJECT, None, comment)

    async def _decide(self, action: int, plan: Any, comment: str) -> None:
        decision = build(plan_pb.PlanDecision, {"action": action, "edited_plan": plan, "comment": comment})
        await self._send(plan_pb.RunStreamRequest(decision=decision))


class AsyncCollaborationRun(AsyncRunStream[collab_pb.RunStreamResponse]):
    """A collaboration run; with `human_in_loop` it pauses (`awaiting_human`) for `human()`."""

    async def human(self, content: str) -> None:
        await self._send(collab_pb.RunStreamRequest(human=collab_pb.HumanTurn(content=content)))


# ---- sync twins ------------------------------------------------------------------------------


class ChatSession(Facade[AsyncChatSession]):
    send = iterating(AsyncChatSession.send)
    stop = blocking(AsyncChatSession.stop)
    reset = blocking(AsyncChatSession.reset)
    close = blocking(AsyncChatSession.aclose)

    @property
    def request_id(self) -> str:
        return self._inner.request_id

    @property
    def turns(self) -> int:
        return self._inner.turns

    @property
    def is_open(self) -> bool:
        return self._inner.is_open

    def __enter__(self) -> ChatSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RunStream(Facade[AsyncRunStream[E]], Generic[E]):
    cancel = blocking(AsyncRunStream.cancel)
    result = blocking(AsyncRunStream.result)
    close = blocking(AsyncRunStream.aclose)

    def __init__(self, inner: AsyncRunStream[E], runner: LoopThread) -> None:
        super().__init__(inner, runner)
        self._iter: SyncIterator[E] | None = None

    @property
    def request_id(self) -> str:
        return self._inner.request_id

    def __iter__(self) -> Iterator[E]:
        if self._iter is None:
            self._iter = SyncIterator(self._runner, self._runner.call(self._inner.__aiter__))
        return self._iter

    def __enter__(self) -> RunStream[E]:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._iter is not None:
            self._iter.close()
        self.close()


class PlanRun(RunStream[plan_pb.RunStreamResponse]):
    approve = blocking(AsyncPlanRun.approve)
    edit = blocking(AsyncPlanRun.edit)
    reject = blocking(AsyncPlanRun.reject)


class CollaborationRun(RunStream[collab_pb.RunStreamResponse]):
    human = blocking(AsyncCollaborationRun.human)
