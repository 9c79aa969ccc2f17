"""Structured model output: ask for a JSON schema, parse, validate, retry, or fail clearly.

A model's malformed answer is never patched into a result: after the allowed attempts the run
fails with UNAVAILABLE + ErrorInfo(reason=MALFORMED_MODEL_OUTPUT), which a client may retry.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import jsonschema
from google.protobuf import any_pb2
from google.rpc import error_details_pb2

from llmmesh.framework.errors import MeshError
from llmmesh.inference.model_call import ChatMessage, Sampling
from llmmesh.patterns.model_client import Completion, ModelClient


class MalformedModelOutput(MeshError):
    code = grpc.StatusCode.UNAVAILABLE

    def __init__(self, model: str, attempts: int, problem: str) -> None:
        super().__init__(f"model {model!r} returned malformed structured output {attempts} times; last: {problem}")
        self.model, self.attempts, self.problem = model, attempts, problem

    def details(self) -> list[any_pb2.Any]:
        info = error_details_pb2.ErrorInfo(reason="MALFORMED_MODEL_OUTPUT", domain="llmmesh",
                                           metadata={"model": self.model, "attempts": str(self.attempts)})
        packed = any_pb2.Any()
        packed.Pack(info)
        return [packed]


@dataclass(frozen=True)
class JsonDelta:
    """Raw text of the JSON answer as it streams (e.g. a judge's reasoning, token by token)."""

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


async def stream_json(client: ModelClient, model: str, messages: Sequence[ChatMessage], schema: dict[str, Any],
                      *, sampling: Sampling | None = None,
                      attempts: int = 3) -> AsyncIterator[JsonDelta | JsonResult]:
    """Deltas of each attempt, then exactly one JsonResult; raises MalformedModelOutput."""
    problem = ""
    for attempt in range(1, attempts + 1):
        completion: Completion | None = None
        async for item in client.stream(model, messages, sampling=sampling, json_schema=schema):
            if isinstance(item, Completion):
                completion = item
            else:
                yield JsonDelta(item, attempt)
        assert completion is not None
        value, problem = parse_valid(completion.text, schema)
        if value is not None:
            yield JsonResult(value, completion)
            return
    raise MalformedModelOutput(model, attempts, problem)


async def complete_json(client: ModelClient, model: str, messages: Sequence[ChatMessage], schema: dict[str, Any],
                        *, sampling: Sampling | None = None, attempts: int = 3) -> JsonResult:
    async for item in stream_json(client, model, messages, schema, sampling=sampling, attempts=attempts):
        if isinstance(item, JsonResult):
            return item
    raise AssertionError("unreachable: stream_json ends with a JsonResult or raises")
