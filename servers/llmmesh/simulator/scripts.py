"""Scripted responses for deterministic pattern tests.

A script is an ordered list of rules (JSON)::

    [{"match": "capital of France", "response": "Paris."},
     {"match": "regex:(?i)weather in \\w+", "tool_calls": [{"function": {"name": "get_weather",
      "arguments": {"city": "Paris"}}}], "times": 1},
     {"match": "", "response": "fallback", "model": "llama3.2:1b", "fault": "token_delay_ms=50"}]

Matching (chat, generate and /v1/chat/completions; never embeddings):

- ``target: "all"`` (default) matches against the whole request text: generate = ``system``
  + newline + ``prompt``; chat = every message's content (all roles, in order) joined by newlines.
  ``target: "last"`` matches only the last message's content (generate: ``prompt``).
- ``match`` is a case-sensitive substring, or ``regex:<python regex>`` (``re.search``). An empty
  substring matches everything.
- Rules are tried in order; the first matching rule that is not exhausted (``times``) and whose
  ``model`` filter (if any) equals the request model wins. No match: unscripted generation.
- ``response`` (a string, or any JSON value which is sent serialised) is streamed split into word
  tokens; ``num_predict``/``stop`` still apply. ``tool_calls`` (chat only) are answered instead
  of text. ``fault`` is layered over the instance fault, under the request's own fault.

Because the whole conversation is matched, a rule that answers with ``tool_calls`` still matches
after the tool result is appended: give it ``times: 1``, put the rule for the follow-up turn
(matching the tool output) first, or use ``target: "last"``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from llmmesh.simulator.config import ScriptRule
from llmmesh.simulator.faults import parse_fault_spec
from llmmesh.simulator.models import normalize_name

_REGEX_PREFIX = "regex:"


class ScriptError(ValueError):
    """A script rule is invalid."""


def normalize_tool_call(call: Mapping[str, Any]) -> dict[str, Any]:
    """Accept ``{"function": {...}}`` or the shorthand ``{"name", "arguments"}``; return Ollama shape."""
    function = call.get("function", call)
    if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
        raise ScriptError(f"tool call needs a function name: {call!r}")
    arguments = function.get("arguments", {})
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError as exc:
            raise ScriptError(f"tool call arguments are not JSON: {exc}") from None
    if not isinstance(arguments, Mapping):
        raise ScriptError("tool call arguments must be an object")
    return {"function": {"name": function["name"], "arguments": dict(arguments)}}


def parse_rule(raw: Mapping[str, Any]) -> ScriptRule:
    if not isinstance(raw, Mapping):
        raise ScriptError(f"script rule must be an object, got {type(raw).__name__}")
    unknown = set(raw) - {"match", "response", "tool_calls", "fault", "times", "model", "target"}
    if unknown:
        raise ScriptError(f"unknown script rule keys: {sorted(unknown)}")
    match = raw.get("match", "")
    if not isinstance(match, str):
        raise ScriptError("script rule 'match' must be a string")
    if match.startswith(_REGEX_PREFIX):
        try:
            re.compile(match[len(_REGEX_PREFIX) :])
        except re.error as exc:
            raise ScriptError(f"bad regex in {match!r}: {exc}") from None
    response = raw.get("response", "")
    if not isinstance(response, str):
        response = json.dumps(response)
    tool_calls = raw.get("tool_calls") or []
    if not isinstance(tool_calls, list):
        raise ScriptError("script rule 'tool_calls' must be a list")
    fault = raw.get("fault") or ""
    parse_fault_spec(fault)  # validate early
    times = raw.get("times")
    if times is not None and (not isinstance(times, int) or times < 1):
        raise ScriptError("script rule 'times' must be a positive integer")
    target = raw.get("target", "all")
    if target not in ("all", "last"):
        raise ScriptError("script rule 'target' must be 'all' or 'last'")
    model = raw.get("model")
    if model is not None and not isinstance(model, str):
        raise ScriptError("script rule 'model' must be a string")
    return ScriptRule(
        match=match,
        response=response,
        tool_calls=tuple(normalize_tool_call(c) for c in tool_calls),
        fault=fault,
        times=times,
        model=model,
        target=target,
    )


def parse_rules(data: Any) -> tuple[ScriptRule, ...]:
    """Rules from decoded JSON: a list of rules or ``{"rules": [...]}``."""
    if isinstance(data, Mapping):
        data = data.get("rules", [])
    if not isinstance(data, list):
        raise ScriptError('scripts must be a list of rules or {"rules": [...]}')
    return tuple(parse_rule(r) for r in data)


def load_rules_file(path: str) -> tuple[ScriptRule, ...]:
    with open(path, encoding="utf-8") as fh:
        return parse_rules(json.load(fh))


def rule_to_json(rule: ScriptRule) -> dict[str, Any]:
    out: dict[str, Any] = {"match": rule.match, "response": rule.response, "target": rule.target}
    if rule.tool_calls:
        out["tool_calls"] = list(rule.tool_calls)
    for key in ("fault", "times", "model"):
        if getattr(rule, key):
            out[key] = getattr(rule, key)
    return out


def _matches(rule: ScriptRule, text: str) -> bool:
    if rule.match.startswith(_REGEX_PREFIX):
        return re.search(rule.match[len(_REGEX_PREFIX) :], text) is not None
    return rule.match in text


class ScriptBook:
    """The rules of an instance plus how many uses each has left."""

    def __init__(self, rules: Iterable[ScriptRule] = ()) -> None:
        self._rules: list[ScriptRule] = []
        self._used: list[int] = []
        self.replace(rules)

    def replace(self, rules: Iterable[ScriptRule]) -> None:
        self._rules = list(rules)
        self._used = [0] * len(self._rules)

    def find(self, model: str, full_text: str, last_text: str) -> ScriptRule | None:
        """First matching, unexhausted rule; using it counts against its ``times``."""
        for i, rule in enumerate(self._rules):
            if rule.times is not None and self._used[i] >= rule.times:
                continue
            if rule.model is not None and normalize_name(rule.model) != normalize_name(model):
                continue
            if _matches(rule, last_text if rule.target == "last" else full_text):
                self._used[i] += 1
                return rule
        return None

    def to_json(self) -> list[dict[str, Any]]:
        return [{**rule_to_json(rule), "used": used} for rule, used in zip(self._rules, self._used, strict=True)]
