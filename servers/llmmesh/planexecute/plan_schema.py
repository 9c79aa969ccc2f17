"""What a planner writes: the JSON schema of a plan, the rules across its fields, and the Plan it means.

Shaped so that a small model under constrained decoding writes a plan that runs:
- Steps come in the order they run, at most the run's `max_steps` (maxItems), with ids from a fixed
  list (`s1`, `s2`, … as an enum: no id can be malformed).
- A tool step is one alternative per offered tool: the tool's name as a const and arguments under
  the tool's own parameter schema (bounded like prompted tool calls, `patterns.tool_schema`), so
  the grammar only lets through calls that tool accepts.
- Free text is bounded (maxLength), so the plan's token budget fits any plan the schema allows.
- Dependencies are not written but read (as in LLMCompiler): a step depends on the steps whose
  results it inserts as `{s1}`. One field less to get wrong, and references and dependencies
  cannot disagree.

The rules JSON Schema cannot state (ids are unique; a reference names a step before it, or one
completed under an earlier revision; no step repeats another) are `problems`, which the planner
hands to `structured.complete_json` as its check: a violation is repaired by telling the model
what is wrong, never by guessing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from llmmesh.common.model_call import ToolDef
from llmmesh.patterns.json_budget import longest_match
from llmmesh.patterns.tool_schema import bounded
from llmmesh.planexecute.plan import Plan, Step, StepKind, references

# A step's description is one instruction, an argument an expression, a URL or a name: a small
# model given more room writes the answer there, and the plan's token budget grows with them.
DESCRIPTION_CHARS = 80
ARGUMENT_CHARS = 80
ID_PREFIX = "s"
STEP_REFERENCE = re.compile(rf"{ID_PREFIX}[0-9]+")
# `{s1}` in a JSON Schema pattern, and a pattern that is one repeated character class. A patterned
# argument is up to PATTERNED_CHARS of the tool's characters, then up to REFERENCES results each
# followed by up to REFERENCE_TAIL_CHARS more: a grammar ignores maxLength beside a pattern, so the
# pattern itself is bounded (and kept short enough that any 4-step plan fits a 2048-token window).
_REFERENCE_PATTERN = rf"\{{{ID_PREFIX}[0-9]{{1,2}}\}}"
PATTERNED_CHARS = 48
REFERENCES = 2
REFERENCE_TAIL_CHARS = 16
_CHAR_CLASS_PATTERN = re.compile(r"\^(\[(?:[^\]\\]|\\.)+\])[+*]\$")


def step_ids(count: int, taken: Collection[str] = ()) -> list[str]:
    """`count` step ids for a new plan revision: s1, s2, … skipping ids of completed steps."""
    out: list[str] = []
    n = 0
    while len(out) < count:
        n += 1
        if f"{ID_PREFIX}{n}" not in taken:
            out.append(f"{ID_PREFIX}{n}")
    return out


def _step(ids: Sequence[str], kind: StepKind, tool: ToolDef | None = None) -> dict[str, Any]:
    props: dict[str, Any] = {
        "id": {"type": "string", "enum": list(ids)},
        "description": {"type": "string", "minLength": 1, "maxLength": DESCRIPTION_CHARS},
        "kind": {"const": kind.value},
    }
    if tool is not None:
        props.update(tool={"const": tool.name}, arguments=_argument(bounded(tool.parameters)))
    # `required` in writing order: the inference service orders properties by it.
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


def _argument(schema: Any) -> Any:
    """A tool's (bounded) parameter schema as a plan step's arguments: strings at most
    ARGUMENT_CHARS, and a string the tool constrains by a `pattern` also admits `{s1}` references
    (the calculator's admits no braces). A character-class pattern (`^[…]+$`) is widened to take
    a few references between its characters (its maxLength then the widened pattern's longest
    match); any other pattern is left out here. Either way the tool checks the argument, with the
    results inserted, when the step runs."""
    if isinstance(schema, list):
        return [_argument(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: v if k in ("const", "enum", "default", "examples") else _argument(v) for k, v in schema.items()}
    if "maxLength" in out:
        out["maxLength"] = min(int(out["maxLength"]), ARGUMENT_CHARS)
    if isinstance(out.get("pattern"), str):
        char_class = _CHAR_CLASS_PATTERN.fullmatch(out["pattern"])
        if char_class:
            chars = char_class.group(1)
            out["pattern"] = (f"^{chars}{{0,{PATTERNED_CHARS}}}"
                              f"({_REFERENCE_PATTERN}{chars}{{0,{REFERENCE_TAIL_CHARS}}}){{0,{REFERENCES}}}$")
            out["maxLength"] = longest_match(out["pattern"])
        else:
            del out["pattern"]
    return out


def plan_schema(tools: Sequence[ToolDef], ids: Sequence[str]) -> dict[str, Any]:
    """A plan of 1 to len(ids) steps: model steps, or calls of one of `tools`."""
    alternatives = [_step(ids, StepKind.MODEL), *(_step(ids, StepKind.TOOL, t) for t in tools)]
    steps = {"type": "array", "minItems": 1, "maxItems": len(ids),
             "items": alternatives[0] if len(alternatives) == 1 else {"anyOf": alternatives}}
    return {"type": "object", "properties": {"steps": steps}, "required": ["steps"], "additionalProperties": False}


def _content(raw: Mapping[str, Any]) -> Any:
    return [raw["description"], raw.get("tool", ""), raw.get("arguments", {})]


def _step_references(raw: Mapping[str, Any], known: Collection[str]) -> list[str]:
    """The steps `raw` refers to: `{id}` of a `known` step or shaped like a step id (`{s9}`);
    other braces (`{name}` in a template the goal is about) are text."""
    return [ref for ref in references(_content(raw)) if ref in known or STEP_REFERENCE.fullmatch(ref)]


def problems(value: Mapping[str, Any], done: Collection[str] = (), failed: Collection[str] = ()) -> str:
    """What is wrong with a plan (valid against `plan_schema`) across its fields, "" if nothing.

    `done` are ids of steps completed under earlier revisions: a step may insert their results;
    `failed` are ids of earlier steps that have none."""
    found: list[str] = []
    known = {raw["id"] for raw in value["steps"]} | set(done)
    earlier: set[str] = set()
    seen: dict[str, str] = {}  # a step's content → the id of the first step with it
    for raw in value["steps"]:
        sid = raw["id"]
        if sid in earlier:
            found.append(f"two steps have the id {sid}: give every step its own id")
        if not raw["description"].strip():
            found.append(f"step {sid} has an empty description")
        key = json.dumps(_content(raw), sort_keys=True)
        if key in seen:
            found.append(f"step {sid} repeats step {seen[key]}: remove it")
        seen.setdefault(key, sid)
        for ref in _step_references(raw, known):
            if ref in earlier or ref in done:
                continue
            if ref != sid and ref in failed:
                found.append(f"step {sid} inserts {{{ref}}}, but step {ref} failed and has no result: do that work "
                             "again in a new step, or do without it")
            else:
                what = "itself" if ref == sid else f"{{{ref}}}, which is not a step before it"
                found.append(f"step {sid} inserts {what}: a step can only insert the results of the steps before it")
        earlier.add(sid)
    return "; ".join(found)


def to_plan(value: Mapping[str, Any], revision: int, done: Collection[str] = ()) -> Plan:
    """The Plan a planner's answer means (one that passed `plan_schema` and `problems`)."""
    known = {raw["id"] for raw in value["steps"]} | set(done)
    steps = []
    for raw in value["steps"]:
        kind = StepKind(raw["kind"])
        arguments = dict(raw.get("arguments") or {})
        steps.append(Step(raw["id"], raw["description"], kind, raw.get("tool", ""), arguments,
                          tuple(_step_references(raw, known))))
    return Plan(tuple(steps), revision)
