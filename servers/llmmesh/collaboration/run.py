"""A collaboration run: its strategy's moves (debate, mixture, round_robin, over the shared
`Discussion`), metered, then the result."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from llmmesh.collaboration import debate, mixture, round_robin
from llmmesh.collaboration.discussion import Discussion
from llmmesh.collaboration.events import AwaitingHuman, CollaborationEvent, CollaborationResult, TurnEvent
from llmmesh.collaboration.request import CollaborationRequest, Strategy
from llmmesh.patterns.model_client import ModelClient, metered

STRATEGIES: dict[Strategy, Callable[[Discussion], AsyncIterator[TurnEvent | AwaitingHuman]]] = {
    Strategy.ROUND_ROBIN: round_robin.run,
    Strategy.DEBATE: debate.run,
    Strategy.MIXTURE_OF_AGENTS: mixture.run,
}


async def run(client: ModelClient, req: CollaborationRequest) -> AsyncIterator[CollaborationEvent]:
    """Every event of the run; the last one is the CollaborationResult."""
    with metered() as meter:
        discussion = Discussion(client, req)
        await discussion.check_fits()
        async for event in STRATEGIES[req.strategy](discussion):
            yield event
        yield CollaborationResult(discussion.answer, tuple(discussion.transcript), req.strategy, req.rounds, meter,
                                  discussion.verdict)
