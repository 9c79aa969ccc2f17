"""The messages each agent, judge and aggregator is given, built from the transcript so far.

Every agent's system message is its role exactly as the request gave it; what it must do in this
turn (and what the others said) is the user message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llmmesh.collaboration.events import Turn
from llmmesh.collaboration.request import SYNTHESIS, AgentSpec
from llmmesh.inference.model_call import ChatMessage

MODERATOR_SYSTEM = (
    "You are a neutral moderator judging a debate. Decide which final answer is best, or combine them "
    "into a better one when none is clearly best."
)
AGGREGATOR_SYSTEM = (
    "You synthesise several candidate answers into one answer that is better than each of them: keep what "
    "is correct, drop what is wrong, resolve disagreements."
)
SUMMARISER_SYSTEM = "You close discussions: summarise what was agreed into the final answer to the task."


def _turns(turns: Sequence[Turn]) -> str:
    return "\n\n".join(f"[{t.agent}, round {t.round}]: {t.content}" for t in turns)


def _answers(turns: Sequence[Turn]) -> str:
    return "\n\n".join(f"[{t.agent}]: {t.content}" for t in turns)


def _human_guidance(transcript: Sequence[Turn]) -> str:
    said = [t for t in transcript if t.human]
    return f"\n\nThe human taking part said:\n{_turns(said)}" if said else ""


def _messages(agent: AgentSpec, user: str) -> list[ChatMessage]:
    system = agent.system_prompt or f"You are {agent.name}."
    return [ChatMessage("system", system), ChatMessage("user", user)]


def round_robin_turn(task: str, agent: AgentSpec, round_: int, rounds: int,
                     transcript: Sequence[Turn]) -> list[ChatMessage]:
    so_far = _turns(transcript) if transcript else "(nobody has spoken yet)"
    return _messages(agent, f"Task:\n{task}\n\nDiscussion so far:\n{so_far}\n\n"
                            f"You are {agent.name}; this is round {round_} of {rounds}. Add your contribution: "
                            "build on, correct or extend what was said.")


def debate_turn(task: str, agent: AgentSpec, round_: int, transcript: Sequence[Turn]) -> list[ChatMessage]:
    guidance = _human_guidance(transcript)
    if round_ == 1:
        return _messages(agent, f"Task:\n{task}{guidance}\n\nYou are {agent.name}. Give your answer and your "
                                "reasoning.")
    previous = [t for t in transcript if t.round == round_ - 1 and not t.human]
    own = next(t.content for t in previous if t.agent == agent.name)
    others = [t for t in previous if t.agent != agent.name]
    return _messages(agent, f"Task:\n{task}\n\nYour answer in round {round_ - 1}:\n{own}\n\n"
                            f"The other agents' answers in round {round_ - 1}:\n{_answers(others)}{guidance}\n\n"
                            f"You are {agent.name}. Weigh their arguments against yours and give your revised "
                            "answer (keep yours if you still think it is right).")


def proposal(task: str, agent: AgentSpec, layer: int, transcript: Sequence[Turn]) -> list[ChatMessage]:
    guidance = _human_guidance(transcript)
    if layer == 1:
        return _messages(agent, f"Task:\n{task}{guidance}\n\nGive your best answer.")
    previous = [t for t in transcript if t.round == layer - 1 and not t.human]
    return _messages(agent, f"Task:\n{task}\n\nAnswers from the previous layer:\n{_answers(previous)}{guidance}\n\n"
                            "Use them: keep what is right, fix what is wrong, and give your own improved answer.")


def aggregation(task: str, aggregator: AgentSpec, proposals: Sequence[Turn],
                transcript: Sequence[Turn]) -> list[ChatMessage]:
    return _messages(aggregator, f"Task:\n{task}\n\nCandidate answers:\n{_answers(proposals)}"
                                 f"{_human_guidance(transcript)}\n\nWrite the single best final answer.")


def summary(task: str, summariser: AgentSpec, transcript: Sequence[Turn]) -> list[ChatMessage]:
    return _messages(summariser, f"Task:\n{task}\n\nDiscussion:\n{_turns(transcript)}\n\n"
                                 "Give the final answer to the task that this discussion arrived at.")


def verdict(task: str, judge: AgentSpec, finals: Sequence[Turn], transcript: Sequence[Turn]) -> list[ChatMessage]:
    names = ", ".join(f'"{t.agent}"' for t in finals)
    return _messages(judge, f"Task:\n{task}\n\nThe debaters' final answers:\n{_answers(finals)}"
                            f"{_human_guidance(transcript)}\n\nAnswer in JSON: \"winner\" is one of {names}, or "
                            f'"{SYNTHESIS}" if you combine them; "answer" is the final answer; "reasoning" says why.')


def verdict_schema(agent_names: Sequence[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "winner": {"type": "string", "enum": [*agent_names, SYNTHESIS]},
            "answer": {"type": "string", "minLength": 1},
            "reasoning": {"type": "string"},
        },
        "required": ["winner", "answer", "reasoning"],
    }
