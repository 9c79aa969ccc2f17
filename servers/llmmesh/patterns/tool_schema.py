"""Prompted tool calls: a JSON schema, built from the tools' own schemas, under which any model
that follows a schema (constrained decoding) can call a tool, or answer.

One alternative per tool, `{"action": "<tool name>", "arguments": {...the tool's parameters}}`,
plus `{"action": "final_answer", "answer": "..."}`. The discriminator is a `const`, and the
alternatives are objects under `anyOf`: the subset that llama.cpp's json-schema-to-grammar (which
Ollama uses too) turns into a grammar, so the model can only write a known tool's name followed by
arguments valid for that tool.

Every free-text string gets a `maxLength` (at most STRING_CHARS) and every list a `maxItems` where
the tool left them open (gRPC tools describe `string` fields without one), so the step has a
token budget (`json_budget.token_budget`). A grammar ignores `maxLength` where a string has a
`pattern`, so in a tool call's schema a pattern bounds the length itself: `^[class]+$` becomes
`^[class]{1,N}$`, and a pattern that may run longer than `maxLength` is left out (the tool still
checks it when called).
These only narrow the tool's schema: whatever the model writes under them is still valid for the
tool.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llmmesh.common.model_call import ToolDef
from llmmesh.patterns.json_budget import longest_match

ACTION = "action"
FINAL_ANSWER = "final_answer"
# Room for a final answer: a few sentences (a small model given more rambles on, and a loop
# runs to the limit before the loop guard can cut it).
ANSWER_CHARS = 400
# Bounds put on a tool's open-ended strings (and the most any string may take: an expression or
# a URL fits, and a model that rambles inside an argument stops soon) and lists.
STRING_CHARS = 300
LIST_ITEMS = 8


@dataclass(frozen=True)
class ToolChoice:
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class FinalAnswer:
    text: str


def tool_call_schema(tools: Sequence[ToolDef], *, allow_answer: bool = True,
                     answer_chars: int = ANSWER_CHARS) -> dict[str, Any]:
    """The schema of one prompted step: call one of `tools`, or (when allowed) answer."""
    if any(t.name == FINAL_ANSWER for t in tools):
        raise ValueError(f"a tool may not be named {FINAL_ANSWER!r}: that is the answer's action")
    alternatives = [_object({ACTION: {"const": t.name}, "arguments": bounded(t.parameters, bound_patterns=True)})
                    for t in tools]
    if allow_answer:
        alternatives.append(_object({ACTION: {"const": FINAL_ANSWER},
                                     "answer": {"type": "string", "minLength": 1, "maxLength": answer_chars}}))
    if not alternatives:
        raise ValueError("a tool call schema needs at least one tool, or the answer")
    return alternatives[0] if len(alternatives) == 1 else {"anyOf": alternatives}


def read_choice(value: dict[str, Any]) -> ToolChoice | FinalAnswer:
    """What a document valid against `tool_call_schema` asks for."""
    if value[ACTION] == FINAL_ANSWER:
        return FinalAnswer(value["answer"])
    return ToolChoice(value[ACTION], dict(value.get("arguments") or {}))


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


_REPEATED_CLASS = re.compile(r"\^(\[(?:[^\]\\]|\\.)+\])([+*])\$")


def _bounded_pattern(pattern: str, max_length: int) -> str:
    """`pattern` made to match at most `max_length` characters, or "" when that cannot be said."""
    if not (pattern.startswith("^") and pattern.endswith("$")):
        return ""  # a grammar matches a pattern whole; an unanchored one means something else there
    repeated = _REPEATED_CLASS.fullmatch(pattern)
    if repeated:
        return f"^{repeated.group(1)}{{{1 if repeated.group(2) == '+' else 0},{max_length}}}$"
    longest = longest_match(pattern)
    return pattern if longest is not None and longest <= max_length else ""


def bounded(schema: Any, *, bound_patterns: bool = False) -> dict[str, Any]:
    """`schema` with every open string, list and free-form object given a bound (a copy); with
    `bound_patterns`, every `pattern` too (see the module's docstring)."""
    if not isinstance(schema, dict):  # `true` or garbage: any JSON value, here a short string
        return {"type": "string", "maxLength": STRING_CHARS}
    out = dict(schema)
    if "const" in out or "enum" in out:
        return out
    for key in ("anyOf", "oneOf"):
        if key in out:
            out[key] = [bounded(s, bound_patterns=bound_patterns) for s in out[key]]
            return out
    kinds = out.get("type")
    kinds = set(kinds) if isinstance(kinds, list) else {kinds}
    if kinds == {None}:
        if "properties" in out:
            kinds = {"object"}
        else:  # no type at all (google.protobuf.Value): a short string is a valid instance
            return {**out, "type": "string", "maxLength": STRING_CHARS}
    if "string" in kinds:
        out["maxLength"] = min(int(out.get("maxLength", STRING_CHARS)), STRING_CHARS)
        if bound_patterns and isinstance(out.get("pattern"), str):
            pattern = _bounded_pattern(out["pattern"], out["maxLength"])
            out.pop("pattern")
            if pattern:
                out["pattern"] = pattern
    if "array" in kinds:
        out.setdefault("maxItems", LIST_ITEMS)
        out["items"] = bounded(out.get("items", {"type": "string"}), bound_patterns=bound_patterns)
    if "object" in kinds:
        props = {name: bounded(sub, bound_patterns=bound_patterns)
                 for name, sub in (out.get("properties") or {}).items()}
        # Free-form members (maps, Struct) are left out: a closed object is still a valid instance.
        out.update(properties=props, additionalProperties=False)
    return out
