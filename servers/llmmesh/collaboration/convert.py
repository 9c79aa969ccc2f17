"""Protobuf ⇄ plain Python for the collaboration service, with request validation."""

from __future__ import annotations

from typing import Any

from llmmesh.collaboration.discussion import HumanInput
from llmmesh.collaboration.events import (
    AwaitingHuman,
    CollaborationEvent,
    CollaborationResult,
    Turn,
    TurnDelta,
    TurnDone,
    TurnStarted,
)
from llmmesh.collaboration.request import (
    DEFAULT_AGENTS,
    DEFAULT_AGGREGATOR,
    DEFAULT_ROUNDS,
    DEFAULT_STRATEGY,
    MAX_AGENT_NAME,
    MIN_AGENTS,
    RESERVED_NAMES,
    AgentSpec,
    CollaborationRequest,
    Strategy,
)
from llmmesh.collaboration.v1 import collaboration_service_pb2 as pb
from llmmesh.common.model_call import MAX_MODEL_NAME
from llmmesh.common.v1 import common_pb2
from llmmesh.framework.bidi import BidiSession
from llmmesh.framework.errors import FieldViolation, InvalidArgument
from llmmesh.framework.validation import Violations
from llmmesh.patterns.limits import bounded
from llmmesh.patterns.options import pattern_sampling
from llmmesh.settings import PatternLimits

_STRATEGIES = {
    pb.STRATEGY_ROUND_ROBIN: Strategy.ROUND_ROBIN,
    pb.STRATEGY_DEBATE: Strategy.DEBATE,
    pb.STRATEGY_MIXTURE_OF_AGENTS: Strategy.MIXTURE_OF_AGENTS,
}
_STRATEGY_ENUM = {s: e for e, s in _STRATEGIES.items()}


def _agent(msg: pb.Agent, field: str, path: str, limits: PatternLimits, v: Violations, *,
           name_required: bool) -> AgentSpec:
    v.text(msg.name, f"{field}.name", required=name_required, max_chars=MAX_AGENT_NAME)
    v.text(msg.system_prompt, f"{field}.system_prompt", max_chars=limits.max_text_chars)
    v.check(len(msg.model) <= MAX_MODEL_NAME, f"{field}.model", f"at most {MAX_MODEL_NAME} characters")
    return AgentSpec(msg.name, msg.system_prompt, msg.model, path)


def _check_names(agents: tuple[AgentSpec, ...], closing: str | None, prefix: str, v: Violations) -> None:
    """Names identify speakers in the transcript and the judge's verdict: unique, not reserved."""
    first: dict[str, int] = {}
    for i, agent in enumerate(agents):
        if agent.name in RESERVED_NAMES:
            v.add(f"{prefix}agents[{i}].name", f"'{agent.name}' is reserved")
        elif agent.name in first:
            v.add(f"{prefix}agents[{i}].name", f"duplicates agents[{first[agent.name]}].name")
        else:
            first[agent.name] = i
    if closing is not None and (closing in first or closing in RESERVED_NAMES):
        v.add(f"{prefix}aggregator.name", f"'{closing}' must differ from every agent name and from "
                                          f"{', '.join(RESERVED_NAMES)} (it defaults to '{DEFAULT_AGGREGATOR}')")


def run_request(msg: pb.RunRequest, limits: PatternLimits, *, streaming: bool,
                prefix: str = "") -> CollaborationRequest:
    """Validated plain request; raises InvalidArgument naming every bad field (`prefix` + path)."""
    v = Violations()
    v.text(msg.task, f"{prefix}task", required=True, max_chars=limits.max_text_chars)
    strategy = DEFAULT_STRATEGY if msg.strategy == pb.STRATEGY_UNSPECIFIED else _STRATEGIES.get(msg.strategy)
    v.check(strategy is not None, f"{prefix}strategy",
            "must be one of STRATEGY_ROUND_ROBIN, STRATEGY_DEBATE, STRATEGY_MIXTURE_OF_AGENTS")
    agents = tuple(_agent(a, f"{prefix}agents[{i}]", f"agents[{i}]", limits, v, name_required=True)
                   for i, a in enumerate(msg.agents)) or DEFAULT_AGENTS
    if strategy is not None and msg.agents:
        least = MIN_AGENTS[strategy]
        v.check(least <= len(agents) <= limits.max_agents, f"{prefix}agents",
                f"{strategy.value} takes between {least} and the server maximum {limits.max_agents} agents")
    aggregator = (_agent(msg.aggregator, f"{prefix}aggregator", "aggregator", limits, v, name_required=False)
                  if msg.HasField("aggregator") else None)
    # Round-robin only closes with a summary when the request names an aggregator.
    closes = strategy is not Strategy.ROUND_ROBIN or aggregator is not None
    _check_names(agents, ((aggregator and aggregator.name) or DEFAULT_AGGREGATOR) if closes else None, prefix, v)
    rounds = bounded(msg.rounds if msg.HasField("rounds") else None, f"{prefix}rounds",
                     default=DEFAULT_ROUNDS[strategy] if strategy else 1, maximum=limits.max_rounds, v=v)
    v.check(streaming or not msg.human_in_loop, f"{prefix}human_in_loop",
            "only RunStream can pause for a human; use RunStream or leave it false")
    sampling = pattern_sampling(msg.options, f"{prefix}options", limits, v)
    v.raise_if_any()
    assert strategy is not None
    return CollaborationRequest(task=msg.task, agents=agents, strategy=strategy, rounds=rounds, aggregator=aggregator,
                                human_in_loop=msg.human_in_loop, sampling=sampling,
                                json_attempts=limits.json_attempts, human_timeout_s=limits.human_timeout_s,
                                field_prefix=prefix)


def human_input(session: BidiSession[Any], limits: PatternLimits) -> HumanInput:
    """Human turns read from the stream. Messages are taken in order, so a client may also send
    its human turns ahead of the pauses (e.g. in a REST request's JSON array)."""

    async def next_turn(round_: int) -> str | None:
        msg: pb.RunStreamRequest | None = await session.next()
        if msg is None:
            return None
        kind = msg.WhichOneof("action")
        if kind != "human":
            raise InvalidArgument([FieldViolation(kind or "action",
                                                  f"expected a 'human' message after round {round_}")])
        v = Violations()
        v.text(msg.human.content, "human.content", max_chars=limits.max_text_chars)
        v.raise_if_any()
        return msg.human.content

    return next_turn


def _turn(t: Turn) -> pb.AgentTurn:
    return pb.AgentTurn(agent=t.agent, round=t.round, content=t.content, human=t.human)


def run_response(r: CollaborationResult) -> pb.RunResponse:
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
    return pb.RunStreamResponse(result=run_response(e))
