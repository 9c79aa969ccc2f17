"""Mixture-of-agents: the proposers answer in parallel, in `rounds` layers (from layer 2 on each
proposer sees every answer of the previous layer); then the aggregator synthesises the last
layer's proposals into the final answer."""

from __future__ import annotations

from collections.abc import AsyncIterator

from llmmesh.collaboration import prompts
from llmmesh.collaboration.discussion import Discussion
from llmmesh.collaboration.events import AwaitingHuman, TurnEvent


async def run(d: Discussion) -> AsyncIterator[TurnEvent | AwaitingHuman]:
    req = d.req
    for layer in range(1, req.rounds + 1):
        with d.round(layer):
            speakers = [(agent, prompts.proposal(req.task, agent, layer, d.transcript)) for agent in req.agents]
            async for event in d.speak_together(layer, speakers):
                yield event
            async for event in d.pause_for_human(layer):
                yield event
    aggregator = d.closing_agent()
    proposals = d.agent_turns(req.rounds)
    async for event in d.speak(aggregator, req.rounds + 1,
                               prompts.aggregation(req.task, aggregator, proposals, d.transcript),
                               budget=prompts.CLOSING_TOKENS):
        yield event
    d.answer = d.transcript[-1].content
