"""What a collaboration run is asked to do, as plain Python (built and validated by convert.py)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from llmmesh.common.model_call import Sampling


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
