"""What a plan-and-execute run reports: each plan it is about to run, each step as it starts and
finishes, the answer's tokens, and finally the result."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from llmmesh.patterns.model_client import UsageMeter
from llmmesh.planexecute.plan import Plan
from llmmesh.tools.base import Failure


class StepStatus(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"  # never ran: an earlier failure of its plan revision led to a replan


@dataclass(frozen=True)
class StepOutcome:
    step_id: str
    status: StepStatus
    output: str
    error: Failure | None
    duration_ms: float
    revision: int


@dataclass(frozen=True)
class PlanProposed:
    plan: Plan
    awaiting_approval: bool


@dataclass(frozen=True)
class StepStarted:
    step_id: str
    revision: int


@dataclass(frozen=True)
class StepFinished:
    outcome: StepOutcome


@dataclass(frozen=True)
class AnswerToken:
    text: str
    source: str = ""  # a step id for a model step's tokens; empty for the final answer


@dataclass(frozen=True)
class PlanResult:
    answer: str
    plan: Plan  # the last revision
    steps: tuple[StepOutcome, ...]  # every step of every revision, in the order they finished
    replans: int
    model: str
    usage: UsageMeter


ExecutionEvent = StepStarted | StepFinished | AnswerToken
PlanEvent = PlanProposed | ExecutionEvent | PlanResult
