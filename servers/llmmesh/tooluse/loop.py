"""The tool loop: the model proposes tool calls (native tool calling), we run them and feed the
results back, until the model answers without tools or the step limit is reached.

- A step is one model turn. Every tool call of a turn runs concurrently; the assistant message
  with its tool calls and one `tool` message per result (in the order the model asked) are
  appended before the next turn.
- A failing tool (bad arguments, timeout, exception) becomes a tool error message the model can
  react to; the run goes on.
- At the step limit the run stops with MAX_STEPS; the tool calls of that last turn are still
  run and reported, and the answer is the last text the model wrote (often empty). No extra
  tool-less "answer now" call is made, so a run makes at most `max_steps` model calls.
- Answer tokens are streamed as the model writes them. A turn that ends in tool calls usually
  has no text; if it has some, it was streamed too, while `answer` holds the final text only.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from llmmesh.inference.model_call import ChatMessage, Sampling, ToolCallData
from llmmesh.patterns.model_client import Completion, ModelClient, metered
from llmmesh.tools.base import ToolOutcome
from llmmesh.tools.registry import ToolSet
from llmmesh.tooluse.events import (
    AnswerToken,
    Finished,
    Invocation,
    StopReason,
    ToolCalled,
    ToolReturned,
    ToolUseEvent,
    ToolUseResult,
)

DEFAULT_SYSTEM = ("You are a helpful assistant with tools. Call a tool whenever it gives a more reliable answer "
                  "than guessing (arithmetic, the current time, fetching data). When you have what you need, "
                  "answer the user directly and concisely.")


@dataclass(frozen=True)
class ToolUseRun:
    prompt: str
    system: str  # replaces DEFAULT_SYSTEM when given
    model: str  # empty: the inference service's default model
    tools: ToolSet
    max_steps: int
    sampling: Sampling


async def run(client: ModelClient, spec: ToolUseRun) -> AsyncIterator[ToolUseEvent]:
    messages = [ChatMessage("system", spec.system or DEFAULT_SYSTEM), ChatMessage("user", spec.prompt)]
    calls: list[Invocation] = []
    results: list[ToolOutcome] = []
    answer, model = "", spec.model
    with metered() as meter:
        for step in range(1, spec.max_steps + 1):
            completion: Completion | None = None
            async for item in client.stream(spec.model, messages, sampling=spec.sampling, tools=spec.tools.defs):
                if isinstance(item, Completion):
                    completion = item
                elif item:
                    yield AnswerToken(item)
            assert completion is not None
            model = completion.model or model
            answer = completion.text or answer
            if not completion.tool_calls:
                yield Finished(ToolUseResult(completion.text, tuple(calls), tuple(results), step,
                                             StopReason.ANSWERED, model, meter))
                return
            invocations = _invocations(completion.tool_calls, step, {c.call_id for c in calls})
            for inv in invocations:
                yield ToolCalled(inv)
            outcomes = await _run_all(spec.tools, invocations)
            messages.append(ChatMessage("assistant", completion.text, tuple(
                ToolCallData(inv.call_id, inv.name, inv.arguments) for inv in invocations)))
            for outcome in outcomes:
                yield ToolReturned(outcome)
                messages.append(ChatMessage("tool", outcome.for_model(), tool_call_id=outcome.call_id,
                                            name=outcome.name))
            calls.extend(invocations)
            results.extend(outcomes)
        yield Finished(ToolUseResult(answer, tuple(calls), tuple(results), spec.max_steps, StopReason.MAX_STEPS,
                                     model, meter))


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
