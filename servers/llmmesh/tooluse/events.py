"""What a tool-use run produces, as plain values (the servicer turns them into protobuf)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from llmmesh.patterns.model_client import UsageMeter
from llmmesh.tools.base import ToolOutcome


class StopReason(StrEnum):
    ANSWERED = "answered"
    MAX_STEPS = "max_steps"


class ToolChoice(StrEnum):
    DEFAULT = "default"  # REQUIRED for prompted calls, AUTO for native ones
    AUTO = "auto"
    REQUIRED = "required"  # the first turn calls a tool (prompted calls only)


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


@dataclass(frozen=True)
class Finished:
    result: ToolUseResult


ToolUseEvent = ToolCalled | ToolReturned | AnswerToken | Finished
