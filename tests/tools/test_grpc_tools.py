"""gRPC methods as tools: discovery through server reflection on a real server, JSON schemas
derived from descriptors, calls that round-trip, and targets that cannot be discovered."""

from __future__ import annotations

import dataclasses
import json
import logging

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, struct_pb2, timestamp_pb2, wrappers_pb2
from prometheus_client import CollectorRegistry

from llmmesh.framework.validation import Violations
from llmmesh.settings import PatternLimits, Settings
from llmmesh.simulator.config import SimulatorConfig
from llmmesh.tools.grpc_schema import MAX_DEPTH, message_schema
from llmmesh.tools.registry import ToolRegistry
from tests.support.inproc import inproc_mesh
from tests.support.ports import free_port

INT64 = {"type": ["integer", "string"], "pattern": "^-?[0-9]+$"}


@pytest.fixture
async def target(settings: Settings):
    """A real server with reflection: the mesh's inference service over a simulator."""
    async with inproc_mesh(dataclasses.replace(settings), CollectorRegistry(),
                           SimulatorConfig(name="a", models=("m",))) as m:
        yield f"127.0.0.1:{m.port}"


async def test_unary_methods_are_discovered_with_schemas_from_their_descriptors(target: str) -> None:
    registry = ToolRegistry(PatternLimits(), grpc_targets=(target,))
    try:
        tools = await registry.tools()
    finally:
        await registry.close()
    grpc_tools = {name for name, t in tools.items() if t.source == target}
    # Streaming methods (Generate, Chat) and grpc.health / grpc.reflection are skipped. (The server
    # also lists the mesh's other services; those whose code this process has loaded are tools too.)
    assert {n for n in grpc_tools if n.startswith("InferenceService.")} == {
        "InferenceService.CompleteChat", "InferenceService.Embed", "InferenceService.ListModels",
        "InferenceService.ListBackends"}
    assert not any(n.startswith(("Health.", "ServerReflection.")) for n in grpc_tools)
    assert tools["InferenceService.ListModels"].parameters == {
        "type": "object", "properties": {}, "additionalProperties": False}
    chat = tools["InferenceService.CompleteChat"].parameters
    message = chat["properties"]["messages"]["items"]
    assert message["properties"]["role"] == {
        "type": "string", "enum": ["ROLE_UNSPECIFIED", "ROLE_SYSTEM", "ROLE_USER", "ROLE_ASSISTANT", "ROLE_TOOL"]}
    assert message["properties"]["tool_calls"]["items"]["properties"]["arguments"] == {"type": "object"}  # Struct
    options = chat["properties"]["options"]["properties"]
    assert options["seed"] == INT64  # int64: string or integer, per proto3 JSON
    assert options["temperature"] == {"type": "number"}
    assert options["stop"] == {"type": "array", "items": {"type": "string"}}
    assert options["max_tokens"]["type"] == "integer" and options["max_tokens"]["maximum"] == 2**31 - 1
    assert chat["properties"]["json_schema"] == {"type": "object"}
    assert "llmmesh.inference.v1.InferenceService/CompleteChat" in tools["InferenceService.CompleteChat"].description


async def test_calls_round_trip_as_json_and_failures_keep_the_remote_code(target: str) -> None:
    registry = ToolRegistry(PatternLimits(), grpc_targets=(target,))
    try:
        tools = await registry.select(["InferenceService.ListModels", "InferenceService.Embed",
                                       "InferenceService.CompleteChat"], "tools", Violations())
        listed = await tools.call("InferenceService.ListModels", {})
        embedded = await tools.call("InferenceService.Embed", {"model": "m", "inputs": ["hello", "world"]})
        chat = await tools.call("InferenceService.CompleteChat", {
            "model": "m", "messages": [{"role": "ROLE_USER", "content": "hi"}], "options": {"max_tokens": 3,
                                                                                           "seed": "7"}})
        missing = await tools.call("InferenceService.Embed", {"model": "nope", "inputs": ["x"]})
        bad_enum = await tools.call("InferenceService.CompleteChat", {"messages": [{"role": "ROLE_KING"}]})
    finally:
        await registry.close()
    assert json.loads(listed.output) == {"models": [{"name": "m:latest", "backends": ["a"], "context_window": 4096,
                                                     "native_tools": True}],
                                         "default_model": "m:latest"}
    vectors = json.loads(embedded.output)["embeddings"]
    assert len(vectors) == 2 and len(vectors[0]["values"]) == 384
    reply = json.loads(chat.output)
    assert reply["message"]["role"] == "ROLE_ASSISTANT" and reply["done"]["output_tokens"] == 3
    assert missing.error is not None and missing.error.code == "NOT_FOUND" and "nope" in missing.error.message
    assert bad_enum.error is not None and bad_enum.error.code == "INVALID_ARGUMENT"


async def test_an_unreachable_target_offers_no_tools_and_logs_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    address = f"127.0.0.1:{free_port()}"
    registry = ToolRegistry(PatternLimits(tool_timeout_s=0.5), grpc_targets=(address,))
    with caplog.at_level(logging.WARNING, logger="llmmesh.tools.grpc"):
        tools = await registry.tools()
        again = await registry.tools()  # cached: no second wait
    await registry.close()
    assert set(tools) == set(again) == {"calculator", "clock", "http_get"}
    assert [r.getMessage() for r in caplog.records if address in r.getMessage()][:1]
    assert sum(address in r.getMessage() for r in caplog.records) == 1


def _pool_with_test_messages() -> descriptor_pool.DescriptorPool:
    """A descriptor built in the test (no .proto file): maps, well-known types, wrappers,
    recursion, enums, bytes and 64-bit integers."""
    pool = descriptor_pool.DescriptorPool()
    for module in (struct_pb2, timestamp_pb2, wrappers_pb2):
        pool.AddSerializedFile(module.DESCRIPTOR.serialized_pb)
    F = descriptor_pb2.FieldDescriptorProto
    f = descriptor_pb2.FileDescriptorProto(
        name="schema_test.proto", package="t", syntax="proto3",
        dependency=["google/protobuf/struct.proto", "google/protobuf/timestamp.proto",
                    "google/protobuf/wrappers.proto"])
    color = f.enum_type.add(name="Color")
    color.value.add(name="COLOR_UNSPECIFIED", number=0)
    color.value.add(name="COLOR_RED", number=1)
    node = f.message_type.add(name="Node")
    node.field.add(name="label", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    node.field.add(name="children", number=2, type=F.TYPE_MESSAGE, type_name=".t.Node", label=F.LABEL_REPEATED)
    top = f.message_type.add(name="Everything")
    entry = top.nested_type.add(name="CountsEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    entry.field.add(name="value", number=2, type=F.TYPE_UINT64, label=F.LABEL_OPTIONAL)
    fields = [("counts", F.TYPE_MESSAGE, ".t.Everything.CountsEntry", F.LABEL_REPEATED),
              ("at", F.TYPE_MESSAGE, ".google.protobuf.Timestamp", F.LABEL_OPTIONAL),
              ("limit", F.TYPE_MESSAGE, ".google.protobuf.Int32Value", F.LABEL_OPTIONAL),
              ("big", F.TYPE_MESSAGE, ".google.protobuf.Int64Value", F.LABEL_OPTIONAL),
              ("meta", F.TYPE_MESSAGE, ".google.protobuf.Struct", F.LABEL_OPTIONAL),
              ("color", F.TYPE_ENUM, ".t.Color", F.LABEL_OPTIONAL),
              ("blob", F.TYPE_BYTES, "", F.LABEL_OPTIONAL),
              ("ids", F.TYPE_SINT64, "", F.LABEL_REPEATED),
              ("flag", F.TYPE_BOOL, "", F.LABEL_OPTIONAL),
              ("tree", F.TYPE_MESSAGE, ".t.Node", F.LABEL_OPTIONAL)]
    for number, (name, kind, type_name, label) in enumerate(fields, start=1):
        added = top.field.add(name=name, number=number, type=kind, label=label)
        if type_name:
            added.type_name = type_name
    pool.Add(f)
    return pool


def test_schema_follows_the_proto3_json_mapping() -> None:
    schema = message_schema(_pool_with_test_messages().FindMessageTypeByName("t.Everything"))
    p = schema["properties"]
    assert schema["additionalProperties"] is False
    assert p["counts"] == {"type": "object", "additionalProperties": {
        "type": ["integer", "string"], "pattern": "^[0-9]+$", "minimum": 0}}
    assert p["at"] == {"type": "string", "format": "date-time"}
    assert p["limit"]["type"] == ["integer", "null"]
    assert p["big"]["type"] == ["integer", "string", "null"]
    assert p["meta"] == {"type": "object"}
    assert p["color"] == {"type": "string", "enum": ["COLOR_UNSPECIFIED", "COLOR_RED"]}
    assert p["blob"] == {"type": "string", "contentEncoding": "base64"}
    assert p["ids"] == {"type": "array", "items": INT64}
    assert p["flag"] == {"type": "boolean"}
    # A message that contains itself is described once, then as "any object".
    tree = p["tree"]
    assert tree["properties"]["children"]["items"] == {"type": "object", "description": "a t.Node message"}


def test_deep_nesting_is_cut_at_max_depth() -> None:
    pool = _pool_with_test_messages()
    depth, schema = 0, message_schema(pool.FindMessageTypeByName("t.Everything"), _depth=MAX_DEPTH - 1)
    while "properties" in schema:
        depth += 1
        schema = schema["properties"]["tree"]
    assert depth == 1 and schema == {"type": "object", "description": "a t.Node message"}
