"""What a reflection run is asked to do, as plain Python (built and validated by convert.py)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from llmmesh.common.model_call import Sampling

DEFAULT_MAX_ROUNDS = 3
DEFAULT_SCORE_THRESHOLD = 8.0
MAX_SCORE = 10.0


class StopReason(enum.Enum):
    THRESHOLD_REACHED = "threshold_reached"
    MAX_ROUNDS = "max_rounds"
    # A revision scored no better than the best draft so far.
    NO_IMPROVEMENT = "no_improvement"


@dataclass(frozen=True)
class ReflectionRequest:
    task: str
    # Round 1's draft when set; otherwise round 1 generates one.
    initial_draft: str
    model: str
    critic_model: str
    criteria: str
    # Rounds of (draft, critique); every round but the first revises the best draft so far.
    max_rounds: int
    score_threshold: float
    sampling: Sampling
    # Structured-output attempts per critique before a malformed answer is an error.
    json_attempts: int
    # How the request's fields are named in errors ("improve." on the stream).
    field_prefix: str = ""

    def caller_fields(self, *names: str) -> dict[str, str]:
        """The caller's non-empty text fields among `names`, keyed by their path in errors."""
        return {f"{self.field_prefix}{n}": getattr(self, n) for n in names if getattr(self, n)}
