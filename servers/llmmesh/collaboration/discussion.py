"""A run's shared state and its moves: agents speaking (alone or concurrently), the judge's
structured verdict, and pausing for a human. Strategies are sequences of these moves.

Every model call is bounded (a turn's budget and anti-repetition sampling, or the verdict schema's
budget), its reply passes the loop guard, and its prompt is fitted to the speaker's context window.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

from opentelemetry.trace import Span

from llmmesh.collaboration import prompts
from llmmesh.collaboration.events import AwaitingHuman, Turn, TurnDelta, TurnDone, TurnEvent, TurnStarted, Verdict
from llmmesh.collaboration.prompts import Prompt
from llmmesh.collaboration.request import HUMAN, AgentSpec, CollaborationRequest, Strategy
from llmmesh.common.model_call import ChatMessage
from llmmesh.framework import tracing
from llmmesh.framework.errors import DeadlineExceeded
from llmmesh.patterns.answer_text import unusable
from llmmesh.patterns.context import Room, fit, fit_turns, room
from llmmesh.patterns.fanout import fan_in
from llmmesh.patterns.free_text import stream_text
from llmmesh.patterns.json_budget import token_budget
from llmmesh.patterns.model_client import Completion, ModelClient
from llmmesh.patterns.options import step_sampling
from llmmesh.patterns.repetition import cut_repetition
from llmmesh.patterns.structured import JsonDelta, stream_json


class Discussion:
    def __init__(self, client: ModelClient, req: CollaborationRequest) -> None:
        self.client = client
        self.req = req
        self.transcript: list[Turn] = []
        self.answer = ""
        # The judge's validated decision, once made.
        self.verdict: Verdict | None = None

    def round(self, round_: int) -> AbstractContextManager[Span]:
        """A round's span, around the round's turns (and the human's) in every strategy."""
        return tracing.span(f"round {round_}", {"llmmesh.collaboration.strategy": self.req.strategy.value,
                                                "llmmesh.collaboration.round": round_,
                                                "llmmesh.collaboration.rounds": self.req.rounds,
                                                "llmmesh.collaboration.agents": [a.name for a in self.req.agents]})

    def agent_turns(self, round_: int) -> list[Turn]:
        return [t for t in self.transcript if t.round == round_ and not t.human]

    async def check_fits(self) -> None:
        """Before any model call: each speaker's opening prompt (the caller's task and its role, no
        turns yet) fits its model's window with room for its answer; else INVALID_ARGUMENT."""
        req = self.req
        speakers = [(agent, prompts.TURN_TOKENS) for agent in req.agents]
        if req.strategy is not Strategy.ROUND_ROBIN or req.aggregator is not None:
            speakers.append((self.closing_agent(), prompts.CLOSING_TOKENS))
        for agent, budget in speakers:
            fit(await self._room(agent, budget), prompts.opening(req.task, agent), req.caller_fields(agent))

    def closing_agent(self) -> AgentSpec:
        """The debate's judge, the mixture's aggregator or the round robin's summariser."""
        return self.req.closing_agent(prompts.CLOSING_SYSTEM[self.req.strategy])

    async def speak(self, agent: AgentSpec, round_: int, prompt: Prompt, *,
                    budget: int | None = None) -> AsyncIterator[TurnEvent]:
        """One turn; it joins the transcript as soon as it is complete."""
        async for event in self._turn(agent, round_, prompt, budget):
            if isinstance(event, TurnDone):
                self.transcript.append(event.turn)
            yield event

    async def speak_together(self, round_: int,
                             speakers: Sequence[tuple[AgentSpec, Prompt]]) -> AsyncIterator[TurnEvent]:
        """Turns of several agents at once, their events interleaved; they join the transcript
        together, in the order of `speakers`, so no agent of the round sees another's turn."""
        done: dict[str, Turn] = {}
        async for event in fan_in(*(self._turn(agent, round_, prompt, None) for agent, prompt in speakers)):
            if isinstance(event, TurnDone):
                done[event.turn.agent] = event.turn
            yield event
        self.transcript.extend(done[agent.name] for agent, _ in speakers)

    async def decide(self, judge: AgentSpec, round_: int, prompt: Prompt,
                     schema: dict[str, Any]) -> AsyncIterator[TurnEvent]:
        """The judge's turn: a structured verdict, its rationale streamed as it is written, kept in
        `verdict`; its transcript entry is the decision as JSON. A rationale that is no text (the
        key's name, a slot) is repaired like a schema error."""
        yield TurnStarted(judge.name, round_)
        room_ = await self._room(judge, token_budget(schema), free_text=False)
        messages = self._fit(room_, judge, prompt)
        value: dict[str, Any] | None = None
        async for item in stream_json(self.client, judge.model, messages, schema, sampling=room_.sampling,
                                      attempts=self.req.json_attempts, text_field="rationale",
                                      check=lambda value: unusable(value["rationale"], "the rationale")):
            if isinstance(item, JsonDelta):
                yield TurnDelta(judge.name, item.text)
            else:
                value = item.value
        assert value is not None  # stream_json ends with a result or raises
        value["rationale"] = cut_repetition(value["rationale"])
        self.verdict = Verdict(value["winner"], value["rationale"])
        turn = Turn(judge.name, round_, json.dumps(value, ensure_ascii=False))
        self.transcript.append(turn)
        yield TurnDone(turn)

    async def pause_for_human(self, round_: int) -> AsyncIterator[AwaitingHuman | TurnDone]:
        """With human_in_loop: announce the pause, wait (bounded) for the human; a non-empty
        answer joins the transcript as a human turn that every later agent sees."""
        if not self.req.human_in_loop:
            return
        assert self.req.human is not None, "human_in_loop needs a way to reach the human (the stream)"
        yield AwaitingHuman(round_)
        try:
            async with asyncio.timeout(self.req.human_timeout_s):
                content = await self.req.human(round_)
        except TimeoutError:
            raise DeadlineExceeded(f"no human turn arrived within {self.req.human_timeout_s:g}s "
                                   f"after round {round_}") from None
        if content and content.strip():
            turn = Turn(HUMAN, round_, content, human=True)
            self.transcript.append(turn)
            yield TurnDone(turn)

    async def _room(self, agent: AgentSpec, budget: int, *, free_text: bool = True) -> Room:
        return await room(self.client, agent.model, step_sampling(self.req.sampling, budget, free_text=free_text))

    def _fit(self, room_: Room, agent: AgentSpec, prompt: Prompt) -> list[ChatMessage]:
        return fit_turns(room_, prompt.render, prompt.turns, self.req.caller_fields(agent), keep=prompt.keep)

    async def _turn(self, agent: AgentSpec, round_: int, prompt: Prompt,
                    budget: int | None) -> AsyncIterator[TurnEvent]:
        yield TurnStarted(agent.name, round_)
        room_ = await self._room(agent, budget or prompts.TURN_TOKENS)
        messages = self._fit(room_, agent, prompt)
        content = ""
        async for item in stream_text(self.client, agent.model, messages, room_.sampling_for(messages),
                                      attempts=self.req.json_attempts):
            if isinstance(item, Completion):
                content = item.text
            else:
                yield TurnDelta(agent.name, item)
        yield TurnDone(Turn(agent.name, round_, content))
