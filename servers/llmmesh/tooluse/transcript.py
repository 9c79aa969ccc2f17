"""The conversation a tool-using model sees, in either way of calling tools, kept inside the
model's context window.

A run's history is a list of ToolTurns (one per call: what was asked, what came back). Native calls
render them as the backend's tool-calling messages (an assistant message with the step's calls,
then one `tool` message per result); prompted calls render each as the JSON the model wrote and a
user message with the result. When the history outgrows the window, `patterns.context.fit_turns`
drops the oldest calls and clips the newest result; the system prompt and the caller's prompt are
never cut (INVALID_ARGUMENT names the caller's field when they alone do not fit).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from llmmesh.common.model_call import ChatMessage, ToolCallData
from llmmesh.patterns import context
from llmmesh.tools.base import Tool, ToolOutcome
from llmmesh.tooluse import prompts
from llmmesh.tooluse.events import Invocation


@dataclass(frozen=True)
class ToolTurn:
    call: Invocation
    outcome: ToolOutcome
    content: str  # the outcome as the model reads it (clipped when the window is tight)
    text: str = ""  # what the model wrote alongside its calls (native), on the step's first call

    @classmethod
    def of(cls, call: Invocation, outcome: ToolOutcome, text: str = "") -> ToolTurn:
        return cls(call, outcome, outcome.for_model(), text)


def _omitted(system: str, omitted: int) -> str:
    if not omitted:
        return system
    return f"{system}\n({omitted} earlier tool calls and their results are left out to fit the context window.)"


def native_messages(system: str, prompt: str, turns: Sequence[ToolTurn], omitted: int) -> list[ChatMessage]:
    messages = [ChatMessage("system", _omitted(system or prompts.DEFAULT_SYSTEM, omitted)), ChatMessage("user", prompt)]
    for _, group in itertools.groupby(turns, key=lambda t: t.call.step):
        step = list(group)
        messages.append(ChatMessage("assistant", step[0].text, tuple(
            ToolCallData(t.call.call_id, t.call.name, t.call.arguments) for t in step)))
        messages.extend(ChatMessage("tool", t.content, tool_call_id=t.call.call_id, name=t.call.name) for t in step)
    return messages


def prompted_messages(system: str, tools: Sequence[Tool], prompt: str, turns: Sequence[ToolTurn], omitted: int,
                      *, demonstrate: bool = True) -> list[ChatMessage]:
    messages = [ChatMessage("system", _omitted(prompts.prompted_system(system, tools), omitted))]
    if demonstrate:
        messages += prompts.demonstrations(tools)
    messages.append(ChatMessage("user", prompt))
    for t in turns:
        messages += [ChatMessage("assistant", prompts.call_json(t.call.name, t.call.arguments)),
                     ChatMessage("user", prompts.result_message(t.call.name, t.content,
                                                                failed=t.outcome.error is not None))]
    return messages


def fitted(room: context.Room, render: context.Render[ToolTurn], turns: Sequence[ToolTurn],
           fields: Mapping[str, str]) -> list[ChatMessage]:
    """The messages of the next step, inside `room`: the newest call is always kept."""
    return context.fit_turns(room, render, turns, fields, keep=1)
