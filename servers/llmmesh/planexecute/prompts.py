"""What the planner, the step executor and the synthesiser are told."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from llmmesh.planexecute.events import StepOutcome
from llmmesh.planexecute.plan import Step
from llmmesh.tools.registry import ToolSet

PLANNER_SYSTEM = """You are the planner. Break the user's goal into a short plan: a list of steps that form a \
dependency graph (no cycles). Each step has:
- id: a short unique name such as s1;
- description: what to do;
- kind: "model" (a question a language model answers; write {{id}} to insert an earlier step's result) \
or "tool" (a call of one of the tools below);
- tool and arguments: for tool steps, the tool name and its JSON arguments (a string argument may \
contain {{id}} to insert an earlier step's result);
- depends_on: the ids of the steps whose results this step needs.
Steps that do not depend on each other run in parallel. Use at most {max_steps} steps. \
Answer with the JSON plan only.

Tools:
{tools}"""

STEP_SYSTEM = ("You carry out one step of a plan toward a larger goal. Do exactly this step and reply with its "
               "result only.")

SYNTHESIS_SYSTEM = ("You write the final answer to a goal from the results of the steps of a plan. Rely on those "
                    "results, do not invent anything beyond them, and answer directly.")


def tools_text(tools: ToolSet) -> str:
    if not tools.tools:
        return "(none: every step is a model step)"
    return "\n".join(f"- {t.name}: {t.description} Arguments schema: {json.dumps(t.parameters)}"
                     for t in tools.tools.values())


def planner_system(tools: ToolSet, max_steps: int) -> str:
    return PLANNER_SYSTEM.format(max_steps=max_steps, tools=tools_text(tools))


def goal_prompt(goal: str) -> str:
    return f"Goal: {goal}"


def replan_prompt(goal: str, done: Sequence[tuple[Step, str]], failed: Sequence[tuple[Step, StepOutcome]],
                  revision: int) -> str:
    completed = "\n".join(f"- [{s.id}] {s.description} -> {output}" for s, output in done) or "(none)"
    failures = "\n".join(f"- [{s.id}] {s.description} -> {o.error.code}: {o.error.message}"
                         for s, o in failed if o.error is not None)
    return (f"Goal: {goal}\n\nSteps completed so far (their results are kept; new steps may depend on their ids "
            f"and insert their results with {{id}}):\n{completed}\n\nThe following steps failed:\n{failures}\n\n"
            f"Write revision {revision} of the plan: only the remaining work, avoiding what failed, with new step "
            "ids (do not reuse the ids of completed steps).")


def invalid_plan_prompt(problem: str) -> str:
    return f"That plan is invalid: {problem}\nAnswer with a corrected JSON plan."


def step_prompt(goal: str, step: Step, description: str, inputs: Iterable[tuple[Step, str]]) -> str:
    earlier = "\n".join(f"[{s.id}] {s.description}\n{output}" for s, output in inputs)
    context = f"Results of earlier steps:\n{earlier}\n\n" if earlier else ""
    return f"Goal: {goal}\n\n{context}Step {step.id}: {description}"


def synthesis_prompt(goal: str, results: Iterable[tuple[Step, str]]) -> str:
    lines = "\n".join(f"[{s.id}] {s.description}\n{output}" for s, output in results)
    return f"Goal: {goal}\n\nStep results:\n{lines}\n\nWrite the final answer to the goal."
