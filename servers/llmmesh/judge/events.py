"""What a judge run reports: its reasoning as it is written, each pairwise order's verdict, and
finally the result."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from llmmesh.judge.criteria import Criterion
from llmmesh.patterns.model_client import UsageMeter


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    # Pairwise, in the original labels: A (`answer`) is better, B (`answer_b`) is, or neither.
    A = "a"
    B = "b"
    TIE = "tie"


# The two orders of a pairwise comparison: A shown first, B shown first.
ORDER_AB, ORDER_BA = "a,b", "b,a"


@dataclass(frozen=True)
class ReasoningDelta:
    """The judge's reasoning as it is written. A retried attempt streams again."""

    text: str
    # Pairwise: the order it belongs to (ORDER_AB / ORDER_BA); empty for pointwise.
    source: str = ""


@dataclass(frozen=True)
class OrderVerdict:
    order: str
    # A, B or TIE.
    winner: Verdict
    reasoning: str
    model: str


@dataclass(frozen=True)
class Pairwise:
    orders: tuple[OrderVerdict, ...]
    consistent: bool


@dataclass(frozen=True)
class Grade:
    """One pointwise grading: the judge's, and each juror's of a jury."""

    score: float
    verdict: Verdict
    reasoning: str
    # The model that judged, as reported by the inference service.
    judge: str


@dataclass(frozen=True)
class JudgeResult:
    """Pointwise: score on the criterion's scale, verdict PASS or FAIL.
    Pairwise: score 1 (A wins), 0 (B wins) or 0.5 (TIE), verdict A, B or TIE."""

    criterion: Criterion
    score: float
    verdict: Verdict
    reasoning: str
    judge: str
    usage: UsageMeter
    pairwise: Pairwise | None = None


JudgeEvent = ReasoningDelta | OrderVerdict | JudgeResult
