"""What a reflection run reports, in order: per round the draft (as deltas, then whole) and its
critique; finally the result."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from llmmesh.patterns.model_client import UsageMeter


class StopReason(enum.Enum):
    THRESHOLD_REACHED = "threshold_reached"
    MAX_ROUNDS = "max_rounds"
    # A revision scored no better than the best draft so far.
    NO_IMPROVEMENT = "no_improvement"


@dataclass(frozen=True)
class DraftDelta:
    round: int
    text: str


@dataclass(frozen=True)
class DraftReady:
    round: int
    text: str


@dataclass(frozen=True)
class CritiqueReady:
    round: int
    score: float
    feedback: str


@dataclass(frozen=True)
class RoundRecord:
    round: int
    draft: str
    score: float
    feedback: str


@dataclass(frozen=True)
class ReflectionResult:
    # The best-scoring draft, which is not the last one when a revision made things worse.
    final_draft: str
    final_score: float
    rounds: int
    stop_reason: StopReason
    history: tuple[RoundRecord, ...]
    model: str
    usage: UsageMeter


ReflectionEvent = DraftDelta | DraftReady | CritiqueReady | ReflectionResult
