"""What a tool-using model reads: the system prompt, and for prompted calls the tools, their worked
examples and each result, in the JSON shape of `patterns.tool_schema`.

Kept short: the embedded default model has a few thousand tokens per request. The worked examples
are earlier turns of the conversation (question, call, result, answer), because small models copy
a demonstration far more reliably than they follow a description.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from llmmesh.common.model_call import ChatMessage
from llmmesh.patterns.tool_schema import ACTION, FINAL_ANSWER
from llmmesh.tools.base import Tool, ToolExample

DEFAULT_SYSTEM = ("You are a helpful assistant with tools. Call a tool whenever it gives a more reliable answer "
                  "than guessing (arithmetic, the current time, fetching data). When you have what you need, "
                  "answer the user directly and concisely.")

PROMPTED_RULES = ("Do not compute or guess yourself: call a tool, then answer from its result.\n"
                  "Reply with one JSON object: a tool call, or the final answer.")
# What follows each result; the worked examples end their results the same way.
NEXT = "Reply with the final answer."
NEXT_AFTER_ERROR = "Call the tool again with corrected arguments, or reply with the final answer."
# A description beyond this is cut: the window is small, the first sentence says what matters.
DESCRIPTION_CHARS = 200


def call_json(name: str, arguments: dict[str, Any]) -> str:
    return json.dumps({ACTION: name, "arguments": arguments}, ensure_ascii=False)


def answer_json(answer: str) -> str:
    return json.dumps({ACTION: FINAL_ANSWER, "answer": answer}, ensure_ascii=False)


def _description(tool: Tool) -> str:
    text = " ".join(tool.description.split())
    return text if len(text) <= DESCRIPTION_CHARS else text[:DESCRIPTION_CHARS].rsplit(" ", 1)[0] + " …"


def _arguments(tool: Tool) -> str:
    props: dict[str, Any] = tool.parameters.get("properties") or {}
    required = set(tool.parameters.get("required") or ())
    parts = [f"{name}{'' if name in required else ' (optional)'}" for name in props]
    return ", ".join(parts) or "none"


def prompted_system(system: str, tools: Sequence[Tool]) -> str:
    lines = "\n".join(f"- {t.name}: {_description(t)} Arguments: {_arguments(t)}." for t in tools)
    return f"{system or DEFAULT_SYSTEM}\n{PROMPTED_RULES}\nTools:\n{lines}"


def result_message(name: str, content: str, *, failed: bool) -> str:
    """A tool's result (`content`: the outcome as the model reads it) in a prompted conversation."""
    if failed:
        return f"{name} failed: {content}\n{NEXT_AFTER_ERROR}"
    return f"{name} returned: {content}\n{NEXT}"


def demonstration(tool: Tool, example: ToolExample) -> list[ChatMessage]:
    return [ChatMessage("user", example.question),
            ChatMessage("assistant", call_json(tool.name, example.arguments)),
            ChatMessage("user", result_message(tool.name, example.output, failed=False)),
            ChatMessage("assistant", answer_json(example.answer))]


def demonstrations(tools: Sequence[Tool]) -> list[ChatMessage]:
    return [m for t in tools for example in t.examples for m in demonstration(t, example)]

