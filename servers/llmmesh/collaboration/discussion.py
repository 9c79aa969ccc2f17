"""A run's shared state and its moves: agents speaking (alone or concurrently), the judge's
structured verdict, and pausing for a human. Strategies are sequences of these moves."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from llmmesh.collaboration.events import AwaitingHuman, Turn, TurnDelta, TurnDone, TurnEvent, TurnStarted
from llmmesh.collaboration.request import HUMAN, AgentSpec, CollaborationRequest
from llmmesh.framework.errors import DeadlineExceeded
from llmmesh.inference.model_call import ChatMessage
from llmmesh.patterns.fanout import fan_in
from llmmesh.patterns.model_client import Completion, ModelClient
from llmmesh.patterns.structured import JsonDelta, stream_json

# Asked after a round with that round's number: the human's text, "" to let the agents go on,
# None when the human can no longer answer (the client closed its side): also go on.
HumanInput = Callable[[int], Awaitable[str | None]]


class Discussion:
    def __init__(self, client: ModelClient, req: CollaborationRequest, human: HumanInput | None) -> None:
        self.client = client
        self.req = req
        self._human = human
        self.transcript: list[Turn] = []
        self.answer = ""
        # The judge's validated decision ({"winner", "answer", "reasoning"}), once made.
        self.verdict: dict[str, Any] | None = None

    def agent_turns(self, round_: int) -> list[Turn]:
        return [t for t in self.transcript if t.round == round_ and not t.human]

    async def speak(self, agent: AgentSpec, round_: int, messages: Sequence[ChatMessage]) -> AsyncIterator[TurnEvent]:
        """One turn; it joins the transcript as soon as it is complete."""
        async for event in self._turn(agent, round_, messages):
            if isinstance(event, TurnDone):
                self.transcript.append(event.turn)
            yield event

    async def speak_together(self, round_: int,
                             speakers: Sequence[tuple[AgentSpec, Sequence[ChatMessage]]]) -> AsyncIterator[TurnEvent]:
        """Turns of several agents at once, their events interleaved; they join the transcript
        together, in the order of `speakers`, so no agent of the round sees another's turn."""
        done: dict[str, Turn] = {}
        async for event in fan_in(*(self._turn(agent, round_, messages) for agent, messages in speakers)):
            if isinstance(event, TurnDone):
                done[event.turn.agent] = event.turn
            yield event
        self.transcript.extend(done[agent.name] for agent, _ in speakers)

    async def decide(self, judge: AgentSpec, round_: int, messages: Sequence[ChatMessage],
                     schema: dict[str, Any]) -> AsyncIterator[TurnEvent]:
        """The judge's turn: a structured answer, streamed as its raw JSON, kept in `verdict`; its
        transcript entry is the decision as JSON."""
        yield TurnStarted(judge.name, round_)
        async for item in stream_json(self.client, judge.model, messages, schema, sampling=self.req.sampling,
                                      attempts=self.req.json_attempts):
            if isinstance(item, JsonDelta):
                yield TurnDelta(judge.name, item.text)
            else:
                self.verdict = item.value
        assert self.verdict is not None  # stream_json ends with a result or raises
        turn = Turn(judge.name, round_, json.dumps(self.verdict, ensure_ascii=False))
        self.transcript.append(turn)
        yield TurnDone(turn)

    async def pause_for_human(self, round_: int) -> AsyncIterator[AwaitingHuman | TurnDone]:
        """With human_in_loop: announce the pause, wait (bounded) for the human; a non-empty
        answer joins the transcript as a human turn that every later agent sees."""
        if not self.req.human_in_loop:
            return
        assert self._human is not None, "human_in_loop needs a way to reach the human"
        yield AwaitingHuman(round_)
        try:
            async with asyncio.timeout(self.req.human_timeout_s):
                content = await self._human(round_)
        except TimeoutError:
            raise DeadlineExceeded(f"no human turn arrived within {self.req.human_timeout_s:g}s "
                                   f"after round {round_}") from None
        if content and content.strip():
            turn = Turn(HUMAN, round_, content, human=True)
            self.transcript.append(turn)
            yield TurnDone(turn)

    async def _turn(self, agent: AgentSpec, round_: int, messages: Sequence[ChatMessage]) -> AsyncIterator[TurnEvent]:
        yield TurnStarted(agent.name, round_)
        content = ""
        async for item in self.client.stream(agent.model, messages, sampling=self.req.sampling):
            if isinstance(item, Completion):
                content = item.text
            else:
                yield TurnDelta(agent.name, item)
        yield TurnDone(Turn(agent.name, round_, content))
