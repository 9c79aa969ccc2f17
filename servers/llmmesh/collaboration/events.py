"""What a collaboration run reports: each turn as it starts, its tokens, the whole turn, pauses
for a human, and finally the result."""

from __future__ import annotations

from dataclasses import dataclass

from llmmesh.collaboration.request import Strategy
from llmmesh.patterns.model_client import UsageMeter


@dataclass(frozen=True)
class Turn:
    agent: str
    # Discussion rounds count from 1; the closing turn (judge, aggregator, summary) is rounds + 1;
    # a human turn carries the round after which the human spoke.
    round: int
    content: str
    human: bool = False


@dataclass(frozen=True)
class TurnStarted:
    agent: str
    round: int


@dataclass(frozen=True)
class TurnDelta:
    agent: str
    text: str


@dataclass(frozen=True)
class TurnDone:
    turn: Turn


@dataclass(frozen=True)
class AwaitingHuman:
    round: int


@dataclass(frozen=True)
class Verdict:
    """A debate moderator's decision: whose final answer wins, and why."""

    winner: str
    rationale: str


@dataclass(frozen=True)
class CollaborationResult:
    # The model's text: a debate's winning final answer, an aggregation, a summary or a last turn.
    answer: str
    # In discussion order; turns of one concurrent round in the order of the request's agents.
    transcript: tuple[Turn, ...]
    strategy: Strategy
    rounds: int
    usage: UsageMeter
    # Debate only.
    verdict: Verdict | None = None


TurnEvent = TurnStarted | TurnDelta | TurnDone
CollaborationEvent = TurnStarted | TurnDelta | TurnDone | AwaitingHuman | CollaborationResult
