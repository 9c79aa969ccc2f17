"""The prompted tool-call schema and what patterns know of a model (window, native tools)."""

from __future__ import annotations

import jsonschema
import pytest

from llmmesh.common.model_call import ToolDef
from llmmesh.inference.v1 import inference_service_pb2 as pb
from llmmesh.patterns import model_info
from llmmesh.patterns.json_budget import token_budget
from llmmesh.patterns.model_info import DEFAULT_CONTEXT_WINDOW, ModelInfo, forget_native_tools, prime
from llmmesh.patterns.tool_schema import (
    STRING_CHARS,
    FinalAnswer,
    ToolChoice,
    bounded,
    read_choice,
    tool_call_schema,
)
from llmmesh.tools.grpc_schema import message_schema
from tests.support.fake_model import FakeModelClient

CALC = ToolDef("calculator", "math", {"type": "object", "required": ["expression"], "additionalProperties": False,
                                      "properties": {"expression": {"type": "string", "maxLength": 200}}})
CLOCK = ToolDef("clock", "time", {"type": "object", "properties": {"timezone": {"type": "string"}}})


def valid(schema: dict, doc: dict) -> bool:
    return jsonschema.Draft202012Validator(schema).is_valid(doc)


def test_one_alternative_per_tool_with_its_own_arguments_plus_the_answer() -> None:
    schema = tool_call_schema([CALC, CLOCK])
    assert valid(schema, {"action": "calculator", "arguments": {"expression": "1+1"}})
    assert valid(schema, {"action": "clock", "arguments": {"timezone": "UTC"}})
    assert valid(schema, {"action": "final_answer", "answer": "2"})
    assert not valid(schema, {"action": "calculator", "arguments": {"timezone": "UTC"}})  # another tool's arguments
    assert not valid(schema, {"action": "search", "arguments": {}})
    assert not valid(schema, {"action": "final_answer", "answer": ""})
    assert not valid(tool_call_schema([CALC], allow_answer=False), {"action": "final_answer", "answer": "2"})
    assert tool_call_schema([], allow_answer=True)["properties"]["action"] == {"const": "final_answer"}
    chosen = read_choice({"action": "clock", "arguments": {"timezone": "UTC"}})
    assert chosen == ToolChoice("clock", {"timezone": "UTC"})
    assert read_choice({"action": "final_answer", "answer": "2"}) == FinalAnswer("2")
    with pytest.raises(ValueError):
        tool_call_schema([ToolDef("final_answer", "", {"type": "object"})])


def test_open_strings_lists_and_objects_get_bounds_so_the_step_has_a_budget() -> None:
    schema = tool_call_schema([CLOCK])
    assert schema["anyOf"][0]["properties"]["arguments"]["properties"]["timezone"]["maxLength"] == STRING_CHARS
    # A gRPC method's request: strings, repeated fields, Struct and Value fields, nested messages.
    grpc_tool = ToolDef("InferenceService.CompleteChat", "", message_schema(pb.CompleteChatRequest.DESCRIPTOR))
    budget = token_budget(tool_call_schema([grpc_tool], allow_answer=False))
    assert 0 < budget < 100_000
    assert bounded({"type": "string", "maxLength": 2048})["maxLength"] == STRING_CHARS
    assert bounded({"type": "array"}) == {"type": "array", "maxItems": 8,
                                          "items": {"type": "string", "maxLength": STRING_CHARS}}
    assert bounded({"type": "object"}) == {"type": "object", "properties": {}, "additionalProperties": False}
    assert bounded({"description": "any JSON value"})["type"] == "string"


@pytest.mark.parametrize(("pattern", "bound"), [
    ("^[a-z]+$", "^[a-z]{1,50}$"), ("^[0-9]*$", "^[0-9]{0,50}$"),  # a repeated class gets the length as its bound
    ("^(UTC|Europe/[A-Z][a-z]{1,10})$", "^(UTC|Europe/[A-Z][a-z]{1,10})$"),  # bounded by itself: kept
    ("^-?[0-9]+$", None), ("^a.*$", None),  # unbounded: left out (the tool still checks it)
    ("[0-9]{3}", None),  # unanchored: a grammar would read it as a whole match
])
def test_a_pattern_in_a_tool_call_bounds_its_length_as_a_grammar_needs(pattern: str, bound: str | None) -> None:
    string = {"type": "string", "maxLength": 50, "pattern": pattern}
    assert bounded(string, bound_patterns=True).get("pattern") == bound
    assert bounded(string)["pattern"] == pattern  # unless asked, patterns stay as they are


def listing() -> pb.ListModelsResponse:
    return pb.ListModelsResponse(default_model="llama3.1:8b", models=[
        pb.ModelInfo(name="llama3.1:8b", aliases=["big"], context_window=8192, native_tools=True),
        pb.ModelInfo(name="smollm2:latest", context_window=0, native_tools=False)])


async def test_model_info_resolves_default_aliases_and_tags_and_remembers_a_refusal() -> None:
    client = FakeModelClient()
    catalog = model_info._from_listing(listing())
    model_info._store(client, catalog)
    assert await model_info.model_info(client, "") == ModelInfo("llama3.1:8b", 8192, True)
    assert await model_info.model_info(client, "big") == ModelInfo("llama3.1:8b", 8192, True)
    assert await model_info.model_info(client, "smollm2") == ModelInfo("smollm2:latest", DEFAULT_CONTEXT_WINDOW,
                                                                        False)
    assert await model_info.model_info(client, "unknown") == ModelInfo("unknown", DEFAULT_CONTEXT_WINDOW, False)
    forget_native_tools(client, "llama3.1:8b")
    assert (await model_info.model_info(client, "big")).native_tools is False


async def test_a_test_double_gets_conservative_defaults_unless_primed() -> None:
    client = FakeModelClient()
    assert await model_info.model_info(client, "m") == ModelInfo("m", DEFAULT_CONTEXT_WINDOW, False)
    prime(client, ModelInfo("m", 32768, True))
    assert await model_info.model_info(client, "") == ModelInfo("m", 32768, True)
