"""Round-robin discussion: the agents speak in turn for `rounds` rounds, each seeing everything
said before. The answer is the last agent's turn, or, when the request names an aggregator, its
closing summary of the whole discussion."""

from __future__ import annotations

from collections.abc import AsyncIterator

from llmmesh.collaboration import prompts
from llmmesh.collaboration.discussion import Discussion
from llmmesh.collaboration.events import AwaitingHuman, TurnEvent


async def run(d: Discussion) -> AsyncIterator[TurnEvent | AwaitingHuman]:
    req = d.req
    for round_ in range(1, req.rounds + 1):
        with d.round(round_):
            for agent in req.agents:
                prompt = prompts.round_robin_turn(req.task, agent, round_, req.rounds, d.transcript)
                async for event in d.speak(agent, round_, prompt):
                    yield event
            # A human turn after the last round only matters if a summary follows it.
            if round_ < req.rounds or req.aggregator is not None:
                async for event in d.pause_for_human(round_):
                    yield event
    if req.aggregator is None:
        d.answer = d.agent_turns(req.rounds)[-1].content
        return
    summariser = d.closing_agent()
    async for event in d.speak(summariser, req.rounds + 1, prompts.summary(req.task, summariser, d.transcript),
                               budget=prompts.CLOSING_TOKENS):
        yield event
    d.answer = d.transcript[-1].content
