"""Protobuf ⇄ plain Python for the reflection service, with request validation."""

from __future__ import annotations

import math

from llmmesh.common.model_call import MAX_MODEL_NAME
from llmmesh.common.v1 import common_pb2
from llmmesh.framework.validation import Violations
from llmmesh.patterns.limits import bounded
from llmmesh.patterns.options import pattern_sampling
from llmmesh.reflection.events import CritiqueReady, DraftDelta, DraftReady, ReflectionEvent, ReflectionResult
from llmmesh.reflection.request import (
    DEFAULT_MAX_ROUNDS,
    DEFAULT_SCORE_THRESHOLD,
    MAX_SCORE,
    ReflectionRequest,
    StopReason,
)
from llmmesh.reflection.v1 import reflection_service_pb2 as pb
from llmmesh.settings import PatternLimits

_STOP_REASONS = {
    StopReason.THRESHOLD_REACHED: pb.REFLECTION_STOP_REASON_THRESHOLD_REACHED,
    StopReason.MAX_ROUNDS: pb.REFLECTION_STOP_REASON_MAX_ROUNDS,
    StopReason.NO_IMPROVEMENT: pb.REFLECTION_STOP_REASON_NO_IMPROVEMENT,
}


def reflection_request(msg: pb.ImproveRequest, limits: PatternLimits, prefix: str = "") -> ReflectionRequest:
    """Validated plain request; raises InvalidArgument naming every bad field (`prefix` + path)."""
    v = Violations()
    v.text(msg.task, f"{prefix}task", required=True, max_chars=limits.max_text_chars)
    v.text(msg.initial_draft, f"{prefix}initial_draft", max_chars=limits.max_text_chars)
    v.text(msg.criteria, f"{prefix}criteria", max_chars=limits.max_text_chars)
    for name in ("model", "critic_model"):
        v.check(len(getattr(msg, name)) <= MAX_MODEL_NAME, f"{prefix}{name}", f"at most {MAX_MODEL_NAME} characters")
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


def improve_response(r: ReflectionResult) -> pb.ImproveResponse:
    return pb.ImproveResponse(
        final_draft=r.final_draft, final_score=r.final_score, rounds=r.rounds, stop_reason=_STOP_REASONS[r.stop_reason],
        history=[pb.ReflectionRound(round=h.round, draft=h.draft, score=h.score, feedback=h.feedback)
                 for h in r.history],
        model=r.model, usage=r.usage.to_proto())


def stream_event(e: ReflectionEvent) -> pb.ImproveStreamResponse:
    if isinstance(e, DraftDelta):
        return pb.ImproveStreamResponse(delta=common_pb2.TokenDelta(text=e.text))
    if isinstance(e, DraftReady):
        return pb.ImproveStreamResponse(draft=pb.Draft(round=e.round, text=e.text))
    if isinstance(e, CritiqueReady):
        return pb.ImproveStreamResponse(critique=pb.Critique(round=e.round, score=e.score, feedback=e.feedback))
    return pb.ImproveStreamResponse(result=improve_response(e))
