"""What a tool-use run reports: each tool call and its result, the answer's tokens, and finally the
result."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from llmmesh.patterns.model_client import UsageMeter
from llmmesh.tools.base import ToolOutcome


class StopReason(StrEnum):
    ANSWERED = "answered"
    MAX_STEPS = "max_steps"


class ToolCalling(StrEnum):
    NATIVE = "native"  # the backend's tool-calling API
    PROMPTED = "prompted"  # JSON output under patterns.tool_schema


@dataclass(frozen=True)
class Invocation:
    call_id: str
    name: str
    arguments: dict[str, Any]
    step: int  # the model turn that asked for it, 1-based


@dataclass(frozen=True)
class ToolCalled:
    invocation: Invocation


@dataclass(frozen=True)
class ToolReturned:
    outcome: ToolOutcome


@dataclass(frozen=True)
class AnswerToken:
    text: str


@dataclass(frozen=True)
class ToolUseResult:
    answer: str
    calls: tuple[Invocation, ...]
    results: tuple[ToolOutcome, ...]
    steps: int
    stop_reason: StopReason
    model: str
    usage: UsageMeter
    tool_calling: ToolCalling


ToolUseEvent = ToolCalled | ToolReturned | AnswerToken | ToolUseResult
