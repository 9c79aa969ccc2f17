"""A collaboration request as plain values, built from the proto with every field validated, and
the human turns a client sends on the stream."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from llmmesh.collaboration.v1 import collaboration_service_pb2 as pb
from llmmesh.common.model_call import MAX_MODEL_NAME, Sampling
from llmmesh.framework.bidi import BidiSession
from llmmesh.framework.errors import FieldViolation, InvalidArgument
from llmmesh.framework.validation import Violations
from llmmesh.patterns.limits import bounded
from llmmesh.patterns.options import pattern_sampling
from llmmesh.patterns.service import Intake
from llmmesh.settings import PatternLimits


class Strategy(enum.Enum):
    ROUND_ROBIN = "round_robin"
    DEBATE = "debate"
    MIXTURE_OF_AGENTS = "mixture_of_agents"


DEFAULT_ROUNDS = {Strategy.ROUND_ROBIN: 2, Strategy.DEBATE: 2, Strategy.MIXTURE_OF_AGENTS: 1}
MIN_AGENTS = {Strategy.ROUND_ROBIN: 2, Strategy.DEBATE: 2, Strategy.MIXTURE_OF_AGENTS: 1}

# Speaker name of turns a human sent over the stream.
HUMAN = "human"
# Name of the judge / aggregator when the request does not name one.
DEFAULT_AGGREGATOR = "moderator"
RESERVED_NAMES = (HUMAN,)
MAX_AGENT_NAME = 64

_STRATEGIES = {
    pb.STRATEGY_ROUND_ROBIN: Strategy.ROUND_ROBIN,
    pb.STRATEGY_DEBATE: Strategy.DEBATE,
    pb.STRATEGY_MIXTURE_OF_AGENTS: Strategy.MIXTURE_OF_AGENTS,
}

# Asked after a round with that round's number: the human's text, "" to let the agents go on,
# None when the human can no longer answer (the client closed its side): also go on.
HumanInput = Callable[[int], Awaitable[str | None]]


@dataclass(frozen=True)
class AgentSpec:
    name: str
    # The agent's role; empty means no particular role.
    system_prompt: str
    # Empty: the inference service's default model.
    model: str
    # Where the agent is in the request ("agents[1]", "aggregator"); empty for a default agent.
    field: str = ""


# The run of a request that names only its task: two proposers of distinct roles answer in
# parallel and a moderator merges their answers (one call's latency more than a single answer).
DEFAULT_STRATEGY = Strategy.MIXTURE_OF_AGENTS
DEFAULT_AGENTS = (
    AgentSpec("expert", "You are a domain expert. Answer the task accurately and concretely, in a few sentences.", ""),
    AgentSpec("pragmatist", "You are a pragmatic generalist. Give a simple, practical answer to the task, in a few "
                            "sentences.", ""),
)


@dataclass(frozen=True)
class CollaborationRequest:
    task: str
    agents: tuple[AgentSpec, ...]
    strategy: Strategy
    rounds: int
    # As given: debate judge, mixture aggregator, round-robin summariser. Empty fields take
    # defaults (see `closing_agent`); None means the request named none.
    aggregator: AgentSpec | None
    human_in_loop: bool
    sampling: Sampling
    json_attempts: int
    human_timeout_s: float
    # How the request's fields are named in errors ("run." on the stream).
    field_prefix: str = ""
    # How the run reaches the human (the stream); None on the unary call.
    human: HumanInput | None = None

    def closing_agent(self, default_system_prompt: str) -> AgentSpec:
        """The judge / aggregator / summariser with defaults filled in: a neutral moderator on
        the first agent's model."""
        given = self.aggregator or AgentSpec("", "", "")
        return AgentSpec(given.name or DEFAULT_AGGREGATOR, given.system_prompt or default_system_prompt,
                         given.model or self.agents[0].model, given.field)

    def caller_fields(self, agent: AgentSpec) -> dict[str, str]:
        """The caller's text in `agent`'s prompts (task, its role), keyed by path in errors."""
        fields = {f"{self.field_prefix}task": self.task}
        given = self.aggregator if agent.field == "aggregator" else agent
        if agent.field and given is not None and given.system_prompt:
            fields[f"{self.field_prefix}{agent.field}.system_prompt"] = given.system_prompt
        return fields


def _agent(msg: pb.Agent, field: str, path: str, limits: PatternLimits, v: Violations, *,
           name_required: bool) -> AgentSpec:
    v.text(msg.name, f"{field}.name", required=name_required, max_chars=MAX_AGENT_NAME)
    v.text(msg.system_prompt, f"{field}.system_prompt", max_chars=limits.max_text_chars)
    v.text(msg.model, f"{field}.model", max_chars=MAX_MODEL_NAME)
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


async def from_proto(msg: pb.RunRequest, intake: Intake) -> CollaborationRequest:
    limits, prefix = intake.limits, intake.prefix
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
    v.check(intake.streaming or not msg.human_in_loop, f"{prefix}human_in_loop",
            "only RunStream can pause for a human; use RunStream or leave it false")
    sampling = pattern_sampling(msg.options, f"{prefix}options", limits, v)
    v.raise_if_any()
    assert strategy is not None
    return CollaborationRequest(task=msg.task, agents=agents, strategy=strategy, rounds=rounds, aggregator=aggregator,
                                human_in_loop=msg.human_in_loop, sampling=sampling,
                                json_attempts=limits.json_attempts, human_timeout_s=limits.human_timeout_s,
                                field_prefix=prefix,
                                human=_human_input(intake.session, limits) if intake.session is not None else None)


def _human_input(session: BidiSession[Any], limits: PatternLimits) -> HumanInput:
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
