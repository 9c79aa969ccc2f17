"""What a comparison reports: each model's answer as it is written and when it is done, each juror's
verdict on it, each model's score, each pairwise comparison, then the result with the ranking."""

from __future__ import annotations

from dataclasses import dataclass

from llmmesh.judge.events import OrderVerdict
from llmmesh.jury.events import JurorVerdict, JuryResult
from llmmesh.patterns.model_client import UsageMeter


@dataclass(frozen=True)
class AnswerDelta:
    model: str
    text: str


@dataclass(frozen=True)
class Answer:
    model: str
    text: str
    latency_ms: float
    time_to_first_token_ms: float
    output_tokens: int
    tokens_per_second: float


@dataclass(frozen=True)
class AnswerVerdict:
    """A juror's verdict on `model`'s answer."""

    model: str
    verdict: JurorVerdict


@dataclass(frozen=True)
class ModelScore:
    model: str
    # The jury's score of the answer, 0..1 (the mean over every juror that answered).
    score: float
    # (criterion, mean normalised score of its jurors), in the request's criteria order.
    criteria: tuple[tuple[str, float], ...]
    jury: JuryResult


@dataclass(frozen=True)
class Comparison:
    model_a: str
    model_b: str
    # The better answer's model; "" for a tie (or orders that disagreed).
    winner: str
    consistent: bool
    # In the labels A (model_a) and B (model_b).
    orders: tuple[OrderVerdict, ...]
    judge: str


@dataclass(frozen=True)
class RankingEntry:
    model: str
    score: float
    rank: int
    wins: int
    ties: int
    latency_ms: float
    tokens_per_second: float
    output_tokens: int


@dataclass(frozen=True)
class CompareResult:
    # Best first.
    ranking: tuple[RankingEntry, ...]
    # In the request's model order.
    answers: tuple[Answer, ...]
    scores: tuple[ModelScore, ...]
    comparisons: tuple[Comparison, ...]
    criteria: tuple[str, ...]
    usage: UsageMeter


CompareEvent = AnswerDelta | Answer | AnswerVerdict | ModelScore | Comparison | CompareResult
