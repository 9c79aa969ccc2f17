"""A reflection request as plain values, built from the proto with every field validated."""

from __future__ import annotations

import math
from dataclasses import dataclass

from llmmesh.common.model_call import MAX_MODEL_NAME, Sampling
from llmmesh.framework.validation import Violations
from llmmesh.patterns.limits import bounded
from llmmesh.patterns.options import pattern_sampling
from llmmesh.patterns.service import Intake
from llmmesh.reflection.v1 import reflection_service_pb2 as pb

DEFAULT_MAX_ROUNDS = 3
DEFAULT_SCORE_THRESHOLD = 8.0
MAX_SCORE = 10.0


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


async def from_proto(msg: pb.ImproveRequest, intake: Intake) -> ReflectionRequest:
    limits, prefix = intake.limits, intake.prefix
    v = Violations()
    v.text(msg.task, f"{prefix}task", required=True, max_chars=limits.max_text_chars)
    v.text(msg.initial_draft, f"{prefix}initial_draft", max_chars=limits.max_text_chars)
    v.text(msg.criteria, f"{prefix}criteria", max_chars=limits.max_text_chars)
    v.text(msg.model, f"{prefix}model", max_chars=MAX_MODEL_NAME)
    v.text(msg.critic_model, f"{prefix}critic_model", max_chars=MAX_MODEL_NAME)
    max_rounds = bounded(msg.max_rounds if msg.HasField("max_rounds") else None, f"{prefix}max_rounds",
                         default=DEFAULT_MAX_ROUNDS, maximum=limits.max_rounds, v=v)
    threshold = DEFAULT_SCORE_THRESHOLD
    if msg.HasField("score_threshold"):
        threshold = msg.score_threshold
        v.check(math.isfinite(threshold) and 0.0 <= threshold <= MAX_SCORE, f"{prefix}score_threshold",
                f"must be between 0 and {MAX_SCORE:g}")
    sampling = pattern_sampling(msg.options, f"{prefix}options", limits, v)
    v.raise_if_any()
    return ReflectionRequest(task=msg.task, initial_draft=msg.initial_draft, model=msg.model,
                             critic_model=msg.critic_model, criteria=msg.criteria, max_rounds=max_rounds,
                             score_threshold=threshold, sampling=sampling, json_attempts=limits.json_attempts,
                             field_prefix=prefix)
