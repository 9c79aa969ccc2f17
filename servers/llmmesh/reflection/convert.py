"""Reflection results and events → protobuf."""

from __future__ import annotations

from llmmesh.common.v1 import common_pb2
from llmmesh.reflection.events import (
    CritiqueReady,
    DraftDelta,
    DraftReady,
    ReflectionEvent,
    ReflectionResult,
    StopReason,
)
from llmmesh.reflection.v1 import reflection_service_pb2 as pb

_STOP_REASONS = {
    StopReason.THRESHOLD_REACHED: pb.REFLECTION_STOP_REASON_THRESHOLD_REACHED,
    StopReason.MAX_ROUNDS: pb.REFLECTION_STOP_REASON_MAX_ROUNDS,
    StopReason.NO_IMPROVEMENT: pb.REFLECTION_STOP_REASON_NO_IMPROVEMENT,
}


def response(r: ReflectionResult) -> pb.ImproveResponse:
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
    return pb.ImproveStreamResponse(result=response(e))
