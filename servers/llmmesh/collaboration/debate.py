"""Debate: every agent answers (concurrently) each round; from round 2 on each sees its own and
the others' previous answers and revises. Then the judge (the aggregator, or a neutral moderator)
picks the winner; the winner's final answer is the answer, the verdict (winner, rationale) goes
beside it."""

from __future__ import annotations

from collections.abc import AsyncIterator

from llmmesh.collaboration import prompts
from llmmesh.collaboration.discussion import Discussion
from llmmesh.collaboration.events import AwaitingHuman, TurnEvent


async def run(d: Discussion) -> AsyncIterator[TurnEvent | AwaitingHuman]:
    req = d.req
    for round_ in range(1, req.rounds + 1):
        with d.round(round_):
            speakers = [(agent, prompts.debate_turn(req.task, agent, round_, d.transcript)) for agent in req.agents]
            async for event in d.speak_together(round_, speakers):
                yield event
            async for event in d.pause_for_human(round_):
                yield event
    judge = d.closing_agent()
    finals = d.agent_turns(req.rounds)
    schema = prompts.verdict_schema([agent.name for agent in req.agents])
    async for event in d.decide(judge, req.rounds + 1, prompts.verdict(req.task, judge, finals, d.transcript),
                                schema):
        yield event
    assert d.verdict is not None
    d.answer = next(t.content for t in finals if t.agent == d.verdict.winner)
