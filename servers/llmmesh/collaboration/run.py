"""A collaboration run: its strategy's moves, metered, then the result."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from llmmesh.collaboration import debate, mixture, round_robin
from llmmesh.collaboration.discussion import Discussion, HumanInput
from llmmesh.collaboration.events import AwaitingHuman, CollaborationEvent, CollaborationResult, TurnEvent
from llmmesh.collaboration.request import CollaborationRequest, Strategy
from llmmesh.patterns.model_client import ModelClient, metered

STRATEGIES: dict[Strategy, Callable[[Discussion], AsyncIterator[TurnEvent | AwaitingHuman]]] = {
    Strategy.ROUND_ROBIN: round_robin.run,
    Strategy.DEBATE: debate.run,
    Strategy.MIXTURE_OF_AGENTS: mixture.run,
}


def collaborate(client: ModelClient, req: CollaborationRequest,
                human: HumanInput | None = None) -> AsyncIterator[CollaborationEvent]:
    """Every event of the run; the last one is the CollaborationResult."""
    return _collaborate(client, req, human)


async def collaboration_result(client: ModelClient, req: CollaborationRequest) -> CollaborationResult:
    async for event in collaborate(client, req):
        if isinstance(event, CollaborationResult):
            return event
    raise AssertionError("unreachable: a collaboration run ends with its result or raises")


async def _collaborate(client: ModelClient, req: CollaborationRequest,
                       human: HumanInput | None) -> AsyncIterator[CollaborationEvent]:
    with metered() as meter:
        discussion = Discussion(client, req, human)
        await discussion.check_fits()
        async for event in STRATEGIES[req.strategy](discussion):
            yield event
        yield CollaborationResult(discussion.answer, tuple(discussion.transcript), req.strategy, req.rounds, meter,
                                  discussion.verdict)
