"""Turning the answering jurors' votes into one score and verdict, and measuring their agreement.

Scores are aggregated on the normalised 0..1 scale so jurors grading on different scales (1-5,
1-10, custom rubrics) count alike. For the score aggregations (mean, median, weighted mean) the
verdict compares the aggregate score with the same aggregate of the jurors' normalised pass
thresholds: for a panel sharing one criterion that is simply the criterion's threshold. Majority
vote counts pass/fail verdicts: the score is the fraction passing, and "pass" needs a strict
majority (a split panel fails: nothing was shown to pass).
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum


class Method(Enum):
    MEAN = "mean"
    MEDIAN = "median"
    MAJORITY_VOTE = "majority_vote"
    WEIGHTED_MEAN = "weighted_mean"


@dataclass(frozen=True)
class Vote:
    normalised: float
    # The juror's pass threshold on the same 0..1 scale.
    threshold: float
    passed: bool
    weight: float = 1.0


@dataclass(frozen=True)
class Agreement:
    # Population standard deviation of the normalised scores (0 when all agree exactly).
    spread: float
    min_score: float
    max_score: float
    # Fraction of jurors whose verdict is the majority verdict.
    verdict_agreement: float
    # Over all pairs of jurors, the fraction of pairs that gave the same verdict.
    pairwise_agreement: float


def _weighted(values: Sequence[float], weights: Sequence[float]) -> float:
    return sum(v * w for v, w in zip(values, weights, strict=True)) / sum(weights)


def aggregate(votes: Sequence[Vote], method: Method) -> tuple[float, bool]:
    """(score in 0..1, passed) of a non-empty set of votes."""
    if not votes:
        raise ValueError("no votes to aggregate")
    if method is Method.MAJORITY_VOTE:
        passing = sum(v.passed for v in votes)
        return passing / len(votes), passing * 2 > len(votes)
    combine: Callable[[Sequence[float]], float]
    if method is Method.WEIGHTED_MEAN:
        weights = [v.weight for v in votes]
        combine = lambda xs: _weighted(xs, weights)  # noqa: E731
    elif method is Method.MEDIAN:
        combine = statistics.median
    else:
        combine = statistics.fmean
    score = combine([v.normalised for v in votes])
    threshold = combine([v.threshold for v in votes])
    return score, score >= threshold


def agreement(votes: Sequence[Vote]) -> Agreement:
    if not votes:
        raise ValueError("no votes to measure")
    scores = [v.normalised for v in votes]
    passing = sum(v.passed for v in votes)
    majority = max(passing, len(votes) - passing)
    pairs = list(itertools.combinations(votes, 2))
    same = sum(a.passed == b.passed for a, b in pairs)
    return Agreement(
        spread=statistics.pstdev(scores),
        min_score=min(scores),
        max_score=max(scores),
        verdict_agreement=majority / len(votes),
        pairwise_agreement=same / len(pairs) if pairs else 1.0,
    )
