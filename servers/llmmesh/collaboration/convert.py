"""Collaboration results and events → protobuf."""

from __future__ import annotations

from llmmesh.collaboration.events import (
    AwaitingHuman,
    CollaborationEvent,
    CollaborationResult,
    Turn,
    TurnDelta,
    TurnDone,
    TurnStarted,
)
from llmmesh.collaboration.request import Strategy
from llmmesh.collaboration.v1 import collaboration_service_pb2 as pb
from llmmesh.common.v1 import common_pb2

_STRATEGY_ENUM = {Strategy.ROUND_ROBIN: pb.STRATEGY_ROUND_ROBIN, Strategy.DEBATE: pb.STRATEGY_DEBATE,
                  Strategy.MIXTURE_OF_AGENTS: pb.STRATEGY_MIXTURE_OF_AGENTS}


def _turn(t: Turn) -> pb.AgentTurn:
    return pb.AgentTurn(agent=t.agent, round=t.round, content=t.content, human=t.human)


def response(r: CollaborationResult) -> pb.RunResponse:
    resp = pb.RunResponse(answer=r.answer, transcript=[_turn(t) for t in r.transcript],
                          strategy=_STRATEGY_ENUM[r.strategy], rounds=r.rounds, usage=r.usage.to_proto())
    if r.verdict is not None:
        resp.verdict.CopyFrom(pb.DebateVerdict(winner=r.verdict.winner, rationale=r.verdict.rationale))
    return resp


def stream_event(e: CollaborationEvent) -> pb.RunStreamResponse:
    if isinstance(e, TurnDelta):
        return pb.RunStreamResponse(delta=common_pb2.TokenDelta(text=e.text, source=e.agent))
    if isinstance(e, TurnStarted):
        return pb.RunStreamResponse(turn_started=pb.TurnStarted(agent=e.agent, round=e.round))
    if isinstance(e, TurnDone):
        return pb.RunStreamResponse(turn=_turn(e.turn))
    if isinstance(e, AwaitingHuman):
        return pb.RunStreamResponse(awaiting_human=pb.AwaitingHuman(round=e.round))
    return pb.RunStreamResponse(result=response(e))
