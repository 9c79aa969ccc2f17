"""Plans: a DAG of model and tool steps, the JSON schema a planner answers in, and validation.

The same validation serves a planner's answer (violations make it malformed output, retried with
the problems spelled out) and a human's edit (violations are INVALID_ARGUMENT with paths such as
`decision.edited_plan.steps[2].depends_on[0]`).
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


def plan_schema(tools: Sequence[str], max_steps: int) -> dict[str, Any]:
    kinds = ["model", "tool"] if tools else ["model"]
    step = {
        "type": "object",
        "properties": {
            "id": {"type": "string", "pattern": STEP_ID.pattern},
            "description": {"type": "string", "minLength": 1},
            "kind": {"type": "string", "enum": kinds},
            "tool": {"type": "string", "enum": [*tools, ""]},
            "arguments": {"type": "object"},
            "depends_on": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["id", "description", "kind", "depends_on"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"steps": {"type": "array", "minItems": 1, "maxItems": max_steps, "items": step}},
        "required": ["steps"],
        "additionalProperties": False,
    }


def from_json(value: Mapping[str, Any], revision: int) -> Plan:
    """A plan from a planner answer that already passed `plan_schema`."""
    steps = []
    for raw in value["steps"]:
        kind = StepKind(raw["kind"])
        tool = raw.get("tool", "") if kind is StepKind.TOOL else ""  # a model step's tool means nothing
        steps.append(Step(raw["id"], raw["description"], kind, tool,
                          dict(raw.get("arguments") or {}) if kind is StepKind.TOOL else {},
                          tuple(raw["depends_on"])))
    return Plan(tuple(steps), revision)


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


def substitute(value: Any, results: Mapping[str, str]) -> Any:
    """`{step_id}` → that step's output, in strings, recursively (tool arguments)."""
    if isinstance(value, str):
        return REFERENCE.sub(lambda m: results.get(m.group(1), m.group(0)), value)
    if isinstance(value, Mapping):
        return {k: substitute(v, results) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, results) for v in value]
    return value
