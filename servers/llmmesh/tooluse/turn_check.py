"""Rules for a prompted turn that its schema cannot state, checked like any structured output
(`patterns.structured`: a broken rule is named to the model, which writes the turn again).

- The answer is the model's text, never a placeholder ("...", "answer") or debris ("); } 72; {").
- An answer with numbers states a number a tool returned. Small models compute "17 * 23 = 378"
  right after the calculator said 391; told so, they copy the tool's number.
- A call whose arguments hold numbers uses every number of the question: small models drop an
  operand ("(3 + 5) * 12" becomes "3 + 5"), and told which one, they put it back.
- A call is not the very call that just failed: under greedy decoding a small model repeats it
  turn after turn; the repair (another seed and temperature) gets it to read the error.
The last three are advisory: each asks once, and a turn that still breaks it is the model's turn,
kept as written (a question's number may really not belong in the call).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from llmmesh.patterns.answer_text import unusable
from llmmesh.patterns.numbers import ignores_results, numbers, raw_numbers
from llmmesh.patterns.structured import Check
from llmmesh.patterns.tool_schema import ACTION, FINAL_ANSWER
from llmmesh.tools.base import ToolOutcome
from llmmesh.tooluse.events import Invocation

# How many times each advisory rule asks for a corrected turn.
ADVISORY_REPAIRS = 1


def _numeric_results(outcomes: Sequence[ToolOutcome]) -> list[tuple[ToolOutcome, float]]:
    out = []
    for o in outcomes:
        if o.error is None:
            try:
                out.append((o, float(o.output.strip())))
            except ValueError:
                continue
    return out


def contradicts_tools(answer: str, outcomes: Sequence[ToolOutcome]) -> str:
    """The answer states numbers, and none a tool returned ("" otherwise)."""
    results = _numeric_results(outcomes)
    if not ignores_results(answer, [value for _, value in results]):
        return ""
    last = results[-1][0]
    return (f"{last.name} returned {last.output.strip()}, but the answer states another number; answer with "
            f"{last.name}'s result")


def drops_operands(question: str, arguments: dict[str, Any]) -> str:
    """What numbers of the question a call with numeric arguments leaves out ("" if none)."""
    given = {abs(value) for value, _ in numbers(json.dumps(arguments))}
    if not given:
        return ""
    missing = [raw for raw, (value, _) in raw_numbers(question) if abs(value) not in given]
    if not missing:
        return ""
    return (f"the arguments leave out {', '.join(dict.fromkeys(missing))} from the question; "
            "call the tool again with every number the question gives")


def repeats_failure(name: str, arguments: dict[str, Any], calls: Sequence[Invocation],
                    outcomes: Sequence[ToolOutcome]) -> str:
    """The call is the last call made, and that call failed ("" otherwise)."""
    if not calls or outcomes[-1].error is None or (calls[-1].name, calls[-1].arguments) != (name, arguments):
        return ""
    return (f"that is the call that just failed ({outcomes[-1].for_model()}); "
            "change the arguments as the error says, or answer")


def turn_check(question: str, calls: Sequence[Invocation], outcomes: Sequence[ToolOutcome]) -> Check:
    """A `check` for `structured.stream_json` of one prompted step, given the caller's question and
    the run's tool calls and their outcomes so far (in the same order)."""
    asked: dict[str, int] = {}  # advisory rule → times it asked

    def check(value: dict[str, Any]) -> str:
        if value.get(ACTION) == FINAL_ANSWER:
            answer = str(value.get("answer", ""))
            if problem := unusable(answer):
                return problem
            advisory = {"numbers": contradicts_tools(answer, outcomes)}
        else:
            arguments = value.get("arguments") or {}
            advisory = {"repeat": repeats_failure(value[ACTION], arguments, calls, outcomes),
                        "operands": drops_operands(question, arguments)}
        for rule, problem in advisory.items():
            if problem and asked.get(rule, 0) < ADVISORY_REPAIRS:
                asked[rule] = asked.get(rule, 0) + 1
                return problem
        return ""

    return check
