"""The mesh's patterns as tools, derived from their gRPC descriptors.

Each pattern service has a unary method (`Evaluate`, `Execute`, `Run`, `Improve`) and its
bidirectional `…Stream` twin whose first message carries the same request and whose events end
in `result` or `error`. A tool's input schema is the unary request's (the same proto3-JSON schema
the gRPC tools get, llmmesh.tools.grpc_schema), its output schema the response's. A call runs the
stream: every event before the result is progress, the result is the answer.

Fields that need a human on the stream (plan approval, human turns) are left out: a tool call is
one request and one answer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
import jsonschema
from google.protobuf import descriptor_pool, json_format, message_factory
from google.protobuf.descriptor import Descriptor, MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2

from llmmesh.framework.delivered_status import keep_delivered_status
from llmmesh.framework.services import generated_module
from llmmesh.gateway import errors
from llmmesh.gateway.upstream import drain
from llmmesh.tools.base import ToolError
from llmmesh.tools.grpc_schema import message_schema
from llmmesh.tools.registry import check_arguments
from llmmesh.topology.description import INGRESS_INFRA_HOST, SERVICES, ServiceSpec

_TOKEN_DELTA = "llmmesh.common.v1.TokenDelta"
_STATUS = "google.rpc.Status"
# What each pattern does, for the model (or person) choosing a tool.
SUMMARIES = {
    "judge": "LLM-as-a-judge: score an answer against a criterion or rubric, or compare two answers.",
    "jury": "A panel of LLM jurors grades an answer; their verdicts are aggregated (majority, mean, …).",
    "tooluse": "A model answers a prompt, calling the mesh's tools (calculator, clock, http_get, gRPC and "
               "MCP tools) in a loop.",
    "planexecute": "Plan-and-execute: a model plans steps, runs ready steps concurrently (with tools), "
                   "replans on failure and answers.",
    "reflection": "Reflection: a model drafts, critiques and revises its answer over rounds.",
    "collaboration": "Several agents (debate, round robin, mixture-of-agents) work on a task together.",
    "compare": "The same prompt to several models at once, their answers side by side, scored by a jury.",
}
# Request fields that wait for a human on the stream: not offered to a one-shot tool call.
INTERACTIVE_FIELDS = {"planexecute": ("require_approval",), "collaboration": ("human_in_loop",)}


@dataclass(frozen=True)
class Progress:
    """One event of a running pattern: which `event` field it set, the event as JSON, and its text
    when it is a token delta."""

    kind: str
    event: dict[str, Any]
    delta: str | None = None


@dataclass(frozen=True)
class Outcome:
    """How a run ended: its result as JSON, or an error as `CODE: message` text."""

    result: dict[str, Any] | None = None
    error: str = ""


def _single_field(message: Descriptor, full_name: str) -> str:
    (name,) = [f.name for f in message.fields if f.message_type is not None and f.message_type.full_name == full_name]
    return name


class PatternTool:
    def __init__(self, spec: ServiceSpec, unary: MethodDescriptor, stream: MethodDescriptor) -> None:
        self.name = self.scope = spec.name
        self.path = f"/{spec.grpc_service}/{stream.name}"
        self.description = (f"{SUMMARIES.get(spec.name, spec.name)} Runs {spec.grpc_service}/{stream.name}: the "
                            f"arguments are a {unary.input_type.full_name} message as JSON, the result a "
                            f"{unary.output_type.full_name} message as JSON.")
        schema = message_schema(unary.input_type)
        for name in INTERACTIVE_FIELDS.get(spec.name, ()):
            schema["properties"].pop(name, None)
        self.input_schema: dict[str, Any] = schema
        self.output_schema: dict[str, Any] = message_schema(unary.output_type)
        self._validator = jsonschema.Draft202012Validator(schema)
        self._start = _single_field(stream.input_type, unary.input_type.full_name)
        self._result = _single_field(stream.output_type, unary.output_type.full_name)
        self._error = _single_field(stream.output_type, _STATUS)
        self._request_class = message_factory.GetMessageClass(unary.input_type)
        self._stream_request = message_factory.GetMessageClass(stream.input_type)
        self._stream_response = message_factory.GetMessageClass(stream.output_type)

    def request(self, arguments: Mapping[str, Any] | None) -> Message:
        """The pattern's request; ToolError (INVALID_ARGUMENT) naming what is wrong otherwise."""
        arguments = dict(arguments or {})
        check_arguments(self._validator, arguments)
        try:
            return json_format.ParseDict(arguments, self._request_class())
        except json_format.ParseError as exc:
            raise ToolError("INVALID_ARGUMENT", f"arguments do not form a valid request: {exc}") from None

    async def run(self, channel: grpc.aio.Channel, request: Message,
                  options: dict[str, Any]) -> AsyncIterator[Progress | Outcome]:
        """The run's events as Progress, then its Outcome. Closing the iterator early cancels the run."""
        rpc = channel.stream_stream(self.path, request_serializer=self._stream_request.SerializeToString,
                                    response_deserializer=self._stream_response.FromString)
        call = keep_delivered_status(rpc(iter([self._stream_request(**{self._start: request})]), **options))
        finished = False
        try:
            async for event in call:
                kind = event.WhichOneof("event")
                if kind in (self._result, self._error):
                    finished = True
                    value = getattr(event, kind)
                    yield (Outcome(result=_json(value)) if kind == self._result
                           else Outcome(error=status_text(value, f"{self._start}.")))
                    return
                if kind is not None:
                    value = getattr(event, kind)
                    delta = value.text if value.DESCRIPTOR.full_name == _TOKEN_DELTA else None
                    yield Progress(kind, _json(value), delta)
            yield Outcome(error="UNAVAILABLE: the run ended without a result")
        except grpc.aio.AioRpcError as exc:
            yield Outcome(error=status_text(errors.status_of(exc), f"{self._start}."))
        finally:
            if finished:
                await drain(call)
            else:  # the caller went away, or the stream broke: the run stops
                call.cancel()


def _json(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def status_text(status: status_pb2.Status, prefix: str = "") -> str:
    """`CODE: message`; for bad input, the field violations, named as the tool's arguments (the
    stream's fields are under `prefix`, e.g. "evaluate.")."""
    violations: list[str] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations += [f"{v.field.removeprefix(prefix)}: {v.description}" for v in bad.field_violations]
    return f"{code_pb2.Code.Name(status.code)}: {'; '.join(violations) or status.message}"


def _pattern_methods(service: ServiceDescriptor) -> tuple[MethodDescriptor, MethodDescriptor] | None:
    """The unary method with a bidirectional `…Stream` twin, if the service has one."""
    for method in service.methods:
        twin = service.methods_by_name.get(f"{method.name}Stream")
        if (twin is not None and not method.client_streaming and not method.server_streaming
                and twin.client_streaming and twin.server_streaming):
            return method, twin
    return None


def pattern_tools() -> dict[str, PatternTool]:
    """Every pattern service of the topology as a tool, by name."""
    pool = descriptor_pool.Default()
    out: dict[str, PatternTool] = {}
    for spec in SERVICES:
        if spec.name == INGRESS_INFRA_HOST:
            continue
        generated_module(spec)  # registers the service's descriptors in the default pool
        methods = _pattern_methods(pool.FindServiceByName(spec.grpc_service))
        if methods is not None:
            out[spec.name] = PatternTool(spec, *methods)
    return out
