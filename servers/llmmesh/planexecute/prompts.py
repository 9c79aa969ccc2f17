"""What the planner, the step executor and the synthesiser are told.

Prompts are short: a small model's window (2048 tokens on the embedded default) holds the prompt
and the answer together, and a small model follows a short instruction and one example better
than a long explanation. The planner's JSON schema (plan_schema) carries the exact format.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from llmmesh.common.model_call import ChatMessage
from llmmesh.planexecute.events import StepOutcome
from llmmesh.planexecute.plan import Step
from llmmesh.tools.registry import ToolSet

# Output budgets of the free-text calls: a step's result is a sentence, the final answer a few; a
# small model that rambles on is stopped soon.
STEP_TOKENS = 128
ANSWER_TOKENS = 192

PLANNER_SYSTEM = """You are the planner. Plan how to reach the user's goal in a few steps, in the order they run: \
at most {max_steps} steps, and fewer is better. Each step has:
- id: {ids};
- description: one short instruction;
- kind: "tool" to call one of the tools below with arguments, or "model" for a language model to write text \
(an explanation, a judgement, the answer).
To use the result of an earlier step, write its id in braces, like {{s1}}, in a description or an argument.

Tools:
{tools}

Answer with the JSON plan only."""

# Worked examples, shown as earlier exchanges: small models copy the shape of an example far
# better than they follow a description of it, and one shown as a past turn is less often copied
# word for word than one inside the instructions. Two shapes, so the plan follows the goal: a
# chain of calculations, and a calculation then a judgement of its result.
_CALCULATOR_EXAMPLES = (
    ("Multiply 12 by 5, then add 3.", {"steps": [
        {"id": "s1", "description": "Multiply 12 by 5", "kind": "tool", "tool": "calculator",
         "arguments": {"expression": "12 * 5"}},
        {"id": "s2", "description": "Add 3 to {s1}", "kind": "tool", "tool": "calculator",
         "arguments": {"expression": "{s1} + 3"}}]}),
    ("Find 7 * 8 and say whether it is even.", {"steps": [
        {"id": "s1", "description": "Compute 7 * 8", "kind": "tool", "tool": "calculator",
         "arguments": {"expression": "7 * 8"}},
        {"id": "s2", "description": "Say whether {s1} is even", "kind": "model"}]}),
)
_MODEL_EXAMPLES = (("Name a fruit and describe its color.", {"steps": [
    {"id": "s1", "description": "Name one fruit", "kind": "model"},
    {"id": "s2", "description": "Describe the color of {s1}", "kind": "model"}]}),)

# The goal is context, given apart from the task: a small model shown the goal next to its step
# answers the goal instead; asked for one sentence, it answers instead of rambling.
STEP_SYSTEM = "You help with this goal: {goal}\nDo only the task you are given, and answer in one sentence."

SYNTHESIS_SYSTEM = ("You write the final answer to a goal from the results of the steps of a plan. Rely on those "
                    "results, do not invent anything beyond them, and answer directly in a few sentences.")


@dataclass(frozen=True)
class Result:
    """A completed step's output as a prompt shows it (the context fitter may clip `content`)."""

    step: Step
    content: str


def tools_text(tools: ToolSet) -> str:
    if not tools.tools:
        return "(none: every step is a model step)"
    return "\n".join(f"- {t.name} (arguments: {', '.join(t.parameters.get('properties', {})) or 'none'}): "
                     f"{t.description}" for t in tools.tools.values())


def _examples(tools: ToolSet) -> tuple[tuple[str, dict[str, Any]], ...]:
    return _CALCULATOR_EXAMPLES if "calculator" in tools else _MODEL_EXAMPLES


def planner_system(tools: ToolSet, max_steps: int, ids: Sequence[str]) -> str:
    return PLANNER_SYSTEM.format(max_steps=max_steps, ids=f"one of {', '.join(ids)}", tools=tools_text(tools))


def planner_messages(tools: ToolSet, max_steps: int, ids: Sequence[str], request: str) -> list[ChatMessage]:
    shown = [m for goal, example in _examples(tools)
             for m in (ChatMessage("user", goal_prompt(goal)), ChatMessage("assistant", json.dumps(example)))]
    return [ChatMessage("system", planner_system(tools, max_steps, ids)), *shown, ChatMessage("user", request)]


def goal_prompt(goal: str) -> str:
    return f"Goal: {goal}"


def _results(results: Iterable[Result]) -> str:
    return "\n".join(f"[{r.step.id}] {r.step.description}\n{r.content}" for r in results)


def _omitted(omitted: int) -> str:
    return f"({omitted} earlier results left out for length)\n" if omitted else ""


def replan_prompt(goal: str, done: Sequence[Result], omitted: int, failed: Sequence[tuple[Step, StepOutcome]],
                  revision: int) -> str:
    # Failed steps are shown without their ids, and the example reference is a completed step's: a
    # small model copies any id it reads into the new plan, and a failed step has no result to insert.
    completed = _omitted(omitted) + (_results(done) or "(none)")
    how = f"insert them with their id in braces, like {{{done[-1].step.id}}}" if done else "none yet"
    failures = "\n".join(f"- {s.description} -> {o.error.code}: {o.error.message}"
                         for s, o in failed if o.error is not None)
    return (f"Goal: {goal}\n\nSteps completed so far (their results are kept; {how}):\n{completed}\n\n"
            f"These steps failed and have no results; do their work again another way:\n{failures}\n\n"
            f"Write revision {revision} of the plan: only the remaining work, avoiding what failed.")


def step_messages(goal: str, description: str, inputs: Sequence[Result], omitted: int = 0) -> list[ChatMessage]:
    """A model step's call: its description (earlier results already inserted where it says `{id}`)
    after the `inputs` it depends on without inserting them (an edited plan's explicit depends_on)."""
    earlier = f"Results of earlier steps:\n{_omitted(omitted)}{_results(inputs)}\n\n" if inputs or omitted else ""
    return [ChatMessage("system", STEP_SYSTEM.format(goal=goal)), ChatMessage("user", f"{earlier}{description}")]


def synthesis_messages(goal: str, results: Sequence[Result], omitted: int = 0) -> list[ChatMessage]:
    # One line per result and the goal last, asking for the results' numbers: a small model
    # continues from what it read last, and otherwise restates the goal instead of answering it.
    lines = _omitted(omitted) + "\n".join(f"- {r.step.description} = {r.content}" for r in results)
    return [ChatMessage("system", SYNTHESIS_SYSTEM),
            ChatMessage("user", f"Results:\n{lines}\n\nWrite the final answer to the goal, with the numbers of the "
                                f"results: {goal}")]
