"""The messages each agent, judge and aggregator is given, built from the transcript so far.

Every agent's system message is its role exactly as the request gave it; what it must do in this
turn (and what the others said) is the user message. Each builder returns a `Prompt`: the
messages as a function of the turns they show, so a step can fit them to its model's context
window (`patterns.context.fit_turns`): older turns are left out first, and the turns the step
cannot do without (the answers it must weigh, the latest turn) are only clipped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from llmmesh.collaboration.events import Turn
from llmmesh.collaboration.request import AgentSpec, Strategy
from llmmesh.common.model_call import ChatMessage

# Output budget of an agent's turn when the caller sets no max_tokens: a paragraph or two.
TURN_TOKENS = 192
# The closing answer (an aggregation, a summary) may be somewhat longer.
CLOSING_TOKENS = 256
# The moderator's reason for its verdict: a sentence or two.
MAX_RATIONALE_CHARS = 200

MODERATOR_SYSTEM = "You are a neutral moderator judging a debate. Decide which debater's final answer is best."
AGGREGATOR_SYSTEM = (
    "You synthesise several candidate answers into one answer that is better than each of them: keep what "
    "is correct, drop what is wrong, resolve disagreements."
)
SUMMARISER_SYSTEM = "You close discussions: summarise what was agreed into the final answer to the task."
# The closing agent's role when the request's aggregator does not give one.
CLOSING_SYSTEM = {Strategy.DEBATE: MODERATOR_SYSTEM, Strategy.MIXTURE_OF_AGENTS: AGGREGATOR_SYSTEM,
                  Strategy.ROUND_ROBIN: SUMMARISER_SYSTEM}


@dataclass(frozen=True)
class Prompt:
    """A step's messages, rendered from the turns they show and how many older ones were left out."""

    render: Callable[[Sequence[Turn], int], list[ChatMessage]]
    # What the step would show with room enough, oldest first.
    turns: tuple[Turn, ...]
    # The newest `keep` turns are never left out (only clipped).
    keep: int = 0


def _left_out(omitted: int, what: str) -> str:
    return f"({omitted} earlier {what} left out for length)\n\n" if omitted else ""


# Every instruction ends so: small models otherwise echo the prompt's labels and instructions.
ONLY = "Reply with your answer only."


def _turns(turns: Sequence[Turn], omitted: int = 0) -> str:
    return _left_out(omitted, "turns") + "\n\n".join(f"{t.agent} (round {t.round}) said: {t.content}" for t in turns)


def _answers(turns: Sequence[Turn]) -> str:
    return "\n\n".join(f"{t.agent} said: {t.content}" for t in turns if not t.human)


def _human_guidance(turns: Sequence[Turn], omitted: int) -> str:
    said = [t for t in turns if t.human]
    return f"\n\nThe human taking part said:\n{_turns(said, omitted)}" if said or omitted else ""


def _messages(agent: AgentSpec, user: str) -> list[ChatMessage]:
    system = agent.system_prompt or f"You are {agent.name}."
    return [ChatMessage("system", system), ChatMessage("user", user)]


def _with_guidance(transcript: Sequence[Turn], answers: Sequence[Turn],
                   render: Callable[[Sequence[Turn], int], list[ChatMessage]]) -> Prompt:
    """A prompt showing `answers` (kept) and the human's turns (left out first, oldest first)."""
    humans = tuple(t for t in transcript if t.human)
    return Prompt(render, (*humans, *answers), keep=len(answers))


def opening(task: str, agent: AgentSpec) -> list[ChatMessage]:
    """What every prompt of `agent` holds at least: its role, the task and an instruction."""
    return round_robin_turn(task, agent, 1, 1, ()).render([], 0)


def round_robin_turn(task: str, agent: AgentSpec, round_: int, rounds: int, transcript: Sequence[Turn]) -> Prompt:
    def render(shown: Sequence[Turn], omitted: int) -> list[ChatMessage]:
        so_far = _turns(shown, omitted) if shown or omitted else "Nobody has spoken yet."
        return _messages(agent, f"Task:\n{task}\n\nThe discussion so far (round {round_} of {rounds}):\n{so_far}\n\n"
                                f"Your turn, {agent.name}: answer the task in a few sentences, building on or "
                                f"correcting what was said. {ONLY}")
    return Prompt(render, tuple(transcript), keep=1)


def debate_turn(task: str, agent: AgentSpec, round_: int, transcript: Sequence[Turn]) -> Prompt:
    previous = [t for t in transcript if t.round == round_ - 1 and not t.human]

    def render(shown: Sequence[Turn], omitted: int) -> list[ChatMessage]:
        guidance = _human_guidance(shown, omitted)
        if round_ == 1:
            return _messages(agent, f"Task:\n{task}{guidance}\n\nGive your answer and your reasoning in a few "
                                    f"sentences. {ONLY}")
        answers = [t for t in shown if not t.human]
        own = next((t.content for t in answers if t.agent == agent.name), "")
        others = [t for t in answers if t.agent != agent.name]
        return _messages(agent, f"Task:\n{task}\n\nYour answer in round {round_ - 1}:\n{own}\n\n"
                                f"The other agents' answers in round {round_ - 1}:\n{_answers(others)}{guidance}\n\n"
                                "Weigh their arguments against yours and give your revised answer (keep yours if you "
                                f"still think it is right). {ONLY}")
    return _with_guidance(transcript, previous, render)


def proposal(task: str, agent: AgentSpec, layer: int, transcript: Sequence[Turn]) -> Prompt:
    previous = [t for t in transcript if t.round == layer - 1 and not t.human]

    def render(shown: Sequence[Turn], omitted: int) -> list[ChatMessage]:
        guidance = _human_guidance(shown, omitted)
        if layer == 1:
            return _messages(agent, f"Task:\n{task}{guidance}\n\nGive your best answer in a few sentences. {ONLY}")
        return _messages(agent, f"Task:\n{task}\n\nAnswers from the previous layer:\n{_answers(shown)}{guidance}\n\n"
                                f"Use them: keep what is right, fix what is wrong, and give your own improved answer. "
                                f"{ONLY}")
    return _with_guidance(transcript, previous, render)


def aggregation(task: str, aggregator: AgentSpec, proposals: Sequence[Turn], transcript: Sequence[Turn]) -> Prompt:
    def render(shown: Sequence[Turn], omitted: int) -> list[ChatMessage]:
        return _messages(aggregator, f"Task:\n{task}\n\nCandidate answers:\n{_answers(shown)}"
                                     f"{_human_guidance(shown, omitted)}\n\nWrite the single best final answer to the "
                                     f"task. {ONLY}")
    return _with_guidance(transcript, proposals, render)


def summary(task: str, summariser: AgentSpec, transcript: Sequence[Turn]) -> Prompt:
    def render(shown: Sequence[Turn], omitted: int) -> list[ChatMessage]:
        return _messages(summariser, f"Task:\n{task}\n\nDiscussion:\n{_turns(shown, omitted)}\n\n"
                                     f"Give the final answer to the task that this discussion arrived at. {ONLY}")
    return Prompt(render, tuple(transcript), keep=1)


def verdict(task: str, judge: AgentSpec, finals: Sequence[Turn], transcript: Sequence[Turn]) -> Prompt:
    names = ", ".join(f'"{t.agent}"' for t in finals)

    def render(shown: Sequence[Turn], omitted: int) -> list[ChatMessage]:
        return _messages(judge, f"Task:\n{task}\n\nThe debaters' final answers:\n{_answers(shown)}"
                                f"{_human_guidance(shown, omitted)}\n\nWhich answer is best? Answer in JSON: "
                                f"\"rationale\" says why in a sentence or two; \"winner\" is one of {names}.")
    return _with_guidance(transcript, finals, render)


def verdict_schema(agent_names: Sequence[str]) -> dict[str, Any]:
    """The moderator's decision: the rationale first (written before, and so informing, the pick),
    the winner among the debaters by name."""
    return {
        "type": "object",
        "properties": {
            "rationale": {"type": "string", "minLength": 1, "maxLength": MAX_RATIONALE_CHARS},
            "winner": {"type": "string", "enum": list(agent_names)},
        },
        "required": ["rationale", "winner"],
    }
