"""Plans: a DAG of model and tool steps, its validation, and `{step_id}` references.

`check` validates any plan that is about to run; a human's edit that fails it is INVALID_ARGUMENT
with paths such as `decision.edited_plan.steps[2].depends_on[0]`. What a planner writes is shaped
and checked first by `plan_schema` (its plans pass `check` by construction).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from llmmesh.framework.errors import FieldViolation

STEP_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
# `{step_id}` in a model step's description or a tool step's string arguments.
REFERENCE = re.compile(r"\{([A-Za-z0-9_-]{1,32})\}")


class StepKind(StrEnum):
    MODEL = "model"
    TOOL = "tool"


@dataclass(frozen=True)
class Step:
    id: str
    description: str
    kind: StepKind | None  # None: not given (only a human edit can leave it out)
    tool: str = ""
    arguments: Mapping[str, Any] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]
    revision: int = 0


def check(plan: Plan, *, tools: Collection[str], max_steps: int, max_chars: int, done: Collection[str] = (),
          prefix: str = "") -> list[FieldViolation]:
    """Every problem of `plan`: ids, kinds, tools, dependencies, cycles. `done` are ids of steps
    completed under earlier revisions: new steps may depend on them but not reuse them."""
    out: list[FieldViolation] = []

    def add(path: str, description: str) -> None:
        out.append(FieldViolation(f"{prefix}{path}", description))

    if not plan.steps:
        add("steps", "a plan needs at least one step")
    elif len(plan.steps) > max_steps:
        add("steps", f"has {len(plan.steps)} steps; the limit is {max_steps}")
    index: dict[str, int] = {}
    for i, step in enumerate(plan.steps):
        if not STEP_ID.match(step.id):
            add(f"steps[{i}].id", "must be 1 to 32 letters, digits, '_' or '-'")
        elif step.id in index:
            add(f"steps[{i}].id", f"{step.id!r} is already the id of steps[{index[step.id]}]")
        elif step.id in done:
            add(f"steps[{i}].id", f"{step.id!r} is the id of a completed step; choose a new one")
        else:
            index[step.id] = i
        if not step.description.strip():
            add(f"steps[{i}].description", "is required")
        elif len(step.description) > max_chars:
            add(f"steps[{i}].description", f"is {len(step.description)} characters; the limit is {max_chars}")
        if step.kind is None:
            add(f"steps[{i}].kind", "must be STEP_KIND_MODEL or STEP_KIND_TOOL")
        elif step.kind is StepKind.TOOL and step.tool not in tools:
            add(f"steps[{i}].tool", f"unknown tool {step.tool!r}; this run offers: {', '.join(tools) or 'none'}"
                if step.tool else "a tool step must name its tool")
    for i, step in enumerate(plan.steps):
        for j, dep in enumerate(step.depends_on):
            if dep == step.id:
                add(f"steps[{i}].depends_on[{j}]", "a step cannot depend on itself")
            elif dep not in index and dep not in done:
                add(f"steps[{i}].depends_on[{j}]", f"no step has the id {dep!r}")
    if not out:
        cycle = _cycle(plan.steps)
        if cycle:
            i, j, path = cycle
            add(f"steps[{i}].depends_on[{j}]", f"dependencies form a cycle: {' -> '.join(path)}")
    return out


def _cycle(steps: Sequence[Step]) -> tuple[int, int, list[str]] | None:
    """(step index, dependency index, the ids around the cycle) of the first cycle, if any."""
    by_id = {s.id: s for s in steps}
    indegree = {s.id: sum(d in by_id for d in set(s.depends_on)) for s in steps}
    dependents: dict[str, list[str]] = {s.id: [] for s in steps}
    for s in steps:
        for d in set(s.depends_on):
            if d in by_id:
                dependents[d].append(s.id)
    ready = [sid for sid, n in indegree.items() if n == 0]
    while ready:
        for nxt in dependents[ready.pop()]:
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                ready.append(nxt)
    stuck = [s for s in steps if indegree[s.id] > 0]
    if not stuck:
        return None
    # Walk stuck dependencies from the first stuck step until an id repeats.
    path = [stuck[0].id]
    while True:
        step = by_id[path[-1]]
        dep = next(d for d in step.depends_on if d in by_id and indegree[d] > 0)
        if dep in path:
            loop = [*path[path.index(dep):], dep]
            first = by_id[loop[0]]
            k = next(k for k, d in enumerate(first.depends_on) if d == loop[1])
            return steps.index(first), k, loop
        path.append(dep)


def references(value: Any) -> list[str]:
    """The step ids `value` refers to as `{step_id}` (in strings, recursively), each once, in order."""
    if isinstance(value, str):
        return list(dict.fromkeys(REFERENCE.findall(value)))
    items = value.values() if isinstance(value, Mapping) else value if isinstance(value, list) else ()
    return list(dict.fromkeys(ref for item in items for ref in references(item)))


def substitute(value: Any, results: Mapping[str, str]) -> Any:
    """`{step_id}` → that step's output, in strings, recursively (tool arguments)."""
    if isinstance(value, str):
        return REFERENCE.sub(lambda m: results.get(m.group(1), m.group(0)), value)
    if isinstance(value, Mapping):
        return {k: substitute(v, results) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, results) for v in value]
    return value
