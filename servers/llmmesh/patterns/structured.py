"""Structured model output: ask for a JSON schema, parse, validate, repair, or fail clearly.

Each attempt is bounded by the schema's token budget (`json_budget`), so a model that follows the
schema always finishes its document. A failed attempt is repaired, not repeated: the next attempt
sees its own bad reply and what was wrong with it (a parse error, a schema violation, or a rule
across fields that `check` found), with another seed and a little more temperature so greedy
decoding does not write the same thing again.

A model's malformed answer is never patched into a result: after the allowed attempts the run
fails with UNAVAILABLE + ErrorInfo(reason=MALFORMED_MODEL_OUTPUT) naming the model that answered,
which a client may retry.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import jsonschema
from google.protobuf import any_pb2

from llmmesh.common.model_call import ChatMessage, Sampling
from llmmesh.framework.errors import MeshError, error_info
from llmmesh.patterns.json_budget import token_budget
from llmmesh.patterns.json_text_stream import FieldText
from llmmesh.patterns.model_client import Completion, ModelClient

# A cross-field rule the schema cannot express: "" when `value` is fine, else what is wrong.
Check = Callable[[dict[str, Any]], str]

# How much of a bad reply a repair prompt quotes back (the model needs to see it, not all of it).
_QUOTE_CHARS = 600
# Temperature of the repair attempts: enough to leave greedy decoding's rut, little enough to keep
# the answer on task.
_REPAIR_TEMPERATURE = (0.4, 0.7)


class MalformedModelOutput(MeshError):
    code = grpc.StatusCode.UNAVAILABLE

    def __init__(self, model: str, attempts: int, problem: str, cut_off: int = 0) -> None:
        super().__init__(f"model {model!r} returned malformed structured output {attempts} times; last: {problem}")
        self.model, self.attempts, self.problem, self.cut_off = model, attempts, problem, cut_off

    def details(self) -> list[any_pb2.Any]:
        # cut_off: attempts that ended at the token limit. With a budget from the schema a model that
        # follows the schema never gets there, so a non-zero count points at the budget, not the model.
        return [error_info("MALFORMED_MODEL_OUTPUT", {"model": self.model, "attempts": str(self.attempts),
                                                      "cut_off": str(self.cut_off)})]


@dataclass(frozen=True)
class JsonDelta:
    """The answer as it streams: the decoded text of its `text_field` (a judge's reasoning, word by
    word), or the raw JSON when the step names no field."""

    text: str
    attempt: int


@dataclass(frozen=True)
class JsonResult:
    value: dict[str, Any]
    completion: Completion


def parse_valid(text: str, schema: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """(value, "") when `text` is a JSON object valid against `schema`, else (None, problem)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"not JSON ({exc.msg} at {exc.pos})"
    if not isinstance(value, dict):
        return None, "not a JSON object"
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(value))
    if error is not None:
        return None, f"schema violation at {'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
    return value, ""


def attempt_sampling(sampling: Sampling | None, budget: int, attempt: int) -> Sampling:
    """The step's sampling for `attempt` (1-based): max_tokens within the schema's budget (a
    caller may ask for fewer), and from the second attempt on another seed and temperature."""
    s = sampling or Sampling()
    s = dataclasses.replace(s, max_tokens=min(s.max_tokens or budget, budget))
    if attempt == 1:
        return s
    temperature = _REPAIR_TEMPERATURE[min(attempt - 2, len(_REPAIR_TEMPERATURE) - 1)]
    return dataclasses.replace(s, seed=(s.seed or 0) + attempt * 7919,
                               temperature=max(s.temperature or 0.0, temperature))


def repair_messages(reply: str, problem: str, *,
                    again: str = "Reply again with one corrected JSON object and nothing else.") -> list[ChatMessage]:
    """What the next attempt is told about the last one."""
    quoted = reply if len(reply) <= _QUOTE_CHARS else reply[:_QUOTE_CHARS] + "…"
    return [ChatMessage("assistant", quoted), ChatMessage("user", f"That reply was not valid: {problem}. {again}")]


def _problem(completion: Completion, schema: dict[str, Any], check: Check | None) -> tuple[dict[str, Any] | None, str]:
    value, problem = parse_valid(completion.text, schema)
    if value is None and completion.done_reason == "length":
        problem = f"the reply was cut off at the token limit ({problem})"
    elif value is not None and check is not None:
        problem = check(value)
        if problem:
            value = None
    return value, problem


async def stream_json(client: ModelClient, model: str, messages: Sequence[ChatMessage], schema: dict[str, Any],
                      *, sampling: Sampling | None = None, attempts: int = 3,
                      check: Check | None = None, text_field: str = "") -> AsyncIterator[JsonDelta | JsonResult]:
    """Deltas of each attempt (of its top-level string `text_field` when named), then exactly one
    JsonResult; raises MalformedModelOutput."""
    budget = token_budget(schema)
    transcript = list(messages)
    problem, answered_by, cut_off = "", model, 0
    for attempt in range(1, attempts + 1):
        completion: Completion | None = None
        field = FieldText(text_field) if text_field else None
        async for item in client.stream(model, transcript, sampling=attempt_sampling(sampling, budget, attempt),
                                        json_schema=schema):
            if isinstance(item, Completion):
                completion = item
            else:
                text = field.feed(item) if field else item
                if text:
                    yield JsonDelta(text, attempt)
        assert completion is not None
        answered_by = completion.model or answered_by
        value, problem = _problem(completion, schema, check)
        cut_off += value is None and completion.done_reason == "length"
        if value is not None:
            yield JsonResult(value, completion)
            return
        # Each repair replaces the previous one: the model sees its latest reply, not a history.
        transcript = [*messages, *repair_messages(completion.text, problem)]
    raise MalformedModelOutput(answered_by, attempts, problem, cut_off)


async def complete_json(client: ModelClient, model: str, messages: Sequence[ChatMessage], schema: dict[str, Any],
                        *, sampling: Sampling | None = None, attempts: int = 3,
                        check: Check | None = None) -> JsonResult:
    async for item in stream_json(client, model, messages, schema, sampling=sampling, attempts=attempts,
                                  check=check):
        if isinstance(item, JsonResult):
            return item
    raise AssertionError("unreachable: stream_json ends with a JsonResult or raises")
