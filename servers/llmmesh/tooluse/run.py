"""The tool loop: the model asks for tool calls, we run them and feed the results back, until the
model answers or the step limit is reached.

Two ways of calling tools, one loop with the same events and limits:
- native: the backend's tool-calling API, where the model has one (ListModels' `native_tools`);
- prompted: every turn is one JSON object under `patterns.tool_schema` (call one tool, or answer),
  after the tools' worked examples. The first turn must call a tool unless the caller chose AUTO
  (small models otherwise answer from memory); once a tool has answered, a turn after a repeated
  call and the last turn may only answer (a small model otherwise calls on and on). Calls and
  answers are checked (`turn_check`) and repaired like any structured output.
When the backend refuses native tools (Ollama's 400 "does not support tools"), the run goes on
with prompted calls, and the client remembers it for later runs.

- A step is one model turn. Every tool call of a turn runs concurrently; their results are
  appended (in the order the model asked) before the next turn.
- A failing tool (bad arguments, timeout, exception) becomes a tool error message the model can
  react to; the run goes on.
- At the step limit the run stops with MAX_STEPS; the tool calls of that last turn are still
  run and reported, and the answer is the last text the model wrote (often empty). No extra
  "answer now" call is made, so a run makes at most `max_steps` model turns.
- Native answer tokens are streamed as the model writes them (a turn that ends in tool calls
  usually has no text; if it has some, it was streamed too, while `answer` holds the final text
  only). A prompted answer is sent once its JSON is valid.
- The conversation is kept inside the model's context window (`transcript`).
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import grpc

from llmmesh.common.model_call import ChatMessage, ToolCallData
from llmmesh.framework.errors import TOOLS_UNSUPPORTED, InvalidArgument
from llmmesh.patterns import context
from llmmesh.patterns.json_budget import token_budget
from llmmesh.patterns.model_client import Completion, ModelClient, RemoteError, metered
from llmmesh.patterns.model_info import forget_native_tools, model_info
from llmmesh.patterns.repetition import cut_repetition, is_degenerate
from llmmesh.patterns.structured import complete_json
from llmmesh.patterns.tool_schema import FinalAnswer, read_choice, tool_call_schema
from llmmesh.tools.base import ToolOutcome
from llmmesh.tools.registry import ToolSet
from llmmesh.tooluse.events import (
    AnswerToken,
    Invocation,
    StopReason,
    ToolCalled,
    ToolCalling,
    ToolReturned,
    ToolUseEvent,
    ToolUseResult,
)
from llmmesh.tooluse.request import ToolChoice, ToolUseRequest
from llmmesh.tooluse.transcript import ToolTurn, fitted, native_messages, prompted_messages
from llmmesh.tooluse.turn_check import turn_check

# Output budget of a native turn: a few tool calls, or an answer of a few paragraphs.
NATIVE_TURN_TOKENS = 512


@dataclass
class _Progress:
    calls: list[Invocation]
    results: list[ToolOutcome]
    turns: list[ToolTurn]
    repeated: bool = False  # the last turn asked for a call it had asked for before


@dataclass(frozen=True)
class _Turn:
    """What one model turn came to: the calls it asks for, or (none) its answer `text`."""

    text: str
    requested: tuple[ToolCallData, ...]
    model: str


async def run(client: ModelClient, req: ToolUseRequest) -> AsyncIterator[ToolUseEvent]:
    info = await model_info(client, req.model)
    calling = ToolCalling.NATIVE if info.native_tools else ToolCalling.PROMPTED
    done = _Progress([], [], [])
    answer, model = "", info.name
    with metered() as meter:
        step = 0
        while step < req.max_steps:
            step += 1
            turn: _Turn | None = None
            take = (_native_turn(client, req, done) if calling is ToolCalling.NATIVE
                    else _prompted_turn(client, req, step, done))
            try:
                async for item in take:
                    if isinstance(item, _Turn):
                        turn = item
                    else:
                        yield item
            except RemoteError as exc:
                if calling is ToolCalling.PROMPTED or not _refuses_tools(exc):
                    raise
                forget_native_tools(client, info.name)
                calling, step = ToolCalling.PROMPTED, step - 1  # the refused turn did not happen
                continue
            assert turn is not None
            model = turn.model or model
            answer = turn.text or answer
            if not turn.requested:
                yield ToolUseResult(turn.text, tuple(done.calls), tuple(done.results), step, StopReason.ANSWERED,
                                    model, meter, calling)
                return
            invocations = _invocations(turn.requested, step, {c.call_id for c in done.calls})
            for inv in invocations:
                yield ToolCalled(inv)
            outcomes = await _run_all(req.tools, invocations)
            asked_before = {_key(c) for c in done.calls}
            done.repeated = any(_key(inv) in asked_before for inv in invocations)
            for i, (inv, outcome) in enumerate(zip(invocations, outcomes, strict=True)):
                yield ToolReturned(outcome)
                done.turns.append(ToolTurn.of(inv, outcome, turn.text if i == 0 else ""))
            done.calls.extend(invocations)
            done.results.extend(outcomes)
        yield ToolUseResult(answer, tuple(done.calls), tuple(done.results), req.max_steps, StopReason.MAX_STEPS,
                            model, meter, calling)


def _refuses_tools(exc: RemoteError) -> bool:
    return exc.code == grpc.StatusCode.INVALID_ARGUMENT and exc.reason == TOOLS_UNSUPPORTED


async def _native_turn(client: ModelClient, req: ToolUseRequest,
                       done: _Progress) -> AsyncIterator[AnswerToken | _Turn]:
    """The answer's tokens as the model writes them, then the turn."""
    room = await context.room(client, req.model, req.step_sampling(NATIVE_TURN_TOKENS, free_text=True))
    messages = fitted(room, lambda shown, omitted: native_messages(req.system, req.prompt, shown, omitted),
                      done.turns, req.fields())
    async for item in client.stream(req.model, messages, sampling=room.sampling_for(messages),
                                    tools=req.tools.defs):
        if not isinstance(item, Completion):
            if item:
                yield AnswerToken(item)
            continue
        text = item.text
        if not item.tool_calls and is_degenerate(text):
            text = cut_repetition(text)  # a loop is never the answer
        yield _Turn(text, item.tool_calls, item.model)


async def _prompted_turn(client: ModelClient, req: ToolUseRequest, step: int,
                         done: _Progress) -> AsyncIterator[AnswerToken | _Turn]:
    """One JSON turn under the tool-call schema; an answer is sent whole, once valid."""
    must_call = not done.results and req.tool_choice is not ToolChoice.AUTO
    # Only once a tool has answered: forced to answer without a result, a small model makes one up.
    answered = any(o.error is None for o in done.results)
    answer_only = answered and (done.repeated or step == req.max_steps)
    schema = tool_call_schema(() if answer_only else req.tools.defs, allow_answer=not must_call)
    room = await context.room(client, req.model, req.step_sampling(token_budget(schema)))
    tools = list(req.tools.tools.values())

    def render(shown: Sequence[ToolTurn], omitted: int, *, demonstrate: bool = True) -> list[ChatMessage]:
        return prompted_messages(req.system, tools, req.prompt, shown, omitted, demonstrate=demonstrate)

    try:
        messages = fitted(room, render, done.turns, req.fields())
    except InvalidArgument:  # a small window: the worked examples go before the caller's text would
        messages = fitted(room, functools.partial(render, demonstrate=False), done.turns, req.fields())
    reply = await complete_json(client, req.model, messages, schema, sampling=room.sampling_for(messages),
                                check=turn_check(req.prompt, done.calls, done.results))
    choice = read_choice(reply.value)
    if isinstance(choice, FinalAnswer):
        text = cut_repetition(choice.text)
        yield AnswerToken(text)
        yield _Turn(text, (), reply.completion.model)
    else:
        yield _Turn("", (ToolCallData(f"call_{step}", choice.name, choice.arguments),), reply.completion.model)


def _key(call: Invocation) -> str:
    return json.dumps([call.name, call.arguments], sort_keys=True, default=str)


def _invocations(requested: Sequence[ToolCallData], step: int, used: set[str]) -> list[Invocation]:
    """Call ids unique within the run (backends number calls per turn: call_0, call_1, …)."""
    out = []
    for i, call in enumerate(requested):
        call_id = call.id or f"call_{i}"
        if call_id in used:
            call_id = f"s{step}_{call_id}"
        used.add(call_id)
        out.append(Invocation(call_id, call.name, dict(call.arguments), step))
    return out


async def _run_all(tools: ToolSet, invocations: Sequence[Invocation]) -> list[ToolOutcome]:
    # ToolSet.call never raises (failures are outcomes), so the group only ends early when the
    # run itself is cancelled, and then it cancels every call.
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(tools.call(inv.name, inv.arguments, inv.call_id)) for inv in invocations]
    return [t.result() for t in tasks]
