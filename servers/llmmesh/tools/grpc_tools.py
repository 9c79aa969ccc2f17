"""Unary methods of other gRPC servers as tools: the mesh itself becomes a tool ecosystem.

A target is discovered through server reflection, lazily and retried as every remote tool server
is (llmmesh.tools.remote). Streaming methods are skipped: a tool call is one request, one answer.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import grpc
from google.protobuf import descriptor_pool, json_format, message_factory
from google.protobuf.descriptor import MethodDescriptor

from llmmesh.framework import request_context
from llmmesh.framework.client_tracing import client_interceptors
from llmmesh.tools.base import ToolError, ToolExample
from llmmesh.tools.grpc_schema import message_schema
from llmmesh.tools.reflection import discover
from llmmesh.tools.remote import RemoteTools

log = logging.getLogger("llmmesh.tools.grpc")

MAX_NAME_CHARS = 64


def tool_name(method: MethodDescriptor) -> str:
    """`<Service>.<Method>`, restricted to the characters every model API accepts in a tool name."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{method.containing_service.name}.{method.name}")[:MAX_NAME_CHARS]


class GrpcMethodTool:
    def __init__(self, target: GrpcTarget, method: MethodDescriptor, pool: descriptor_pool.DescriptorPool) -> None:
        self._target = target
        self._pool = pool
        self.name = tool_name(method)
        self.source = target.address
        service = method.containing_service.full_name
        self.description = (f"Calls the gRPC method {service}/{method.name}. Arguments: a "
                            f"{method.input_type.full_name} message as JSON; the answer is a "
                            f"{method.output_type.full_name} message as JSON.")
        self.parameters: dict[str, Any] = message_schema(method.input_type)
        self.examples: tuple[ToolExample, ...] = ()  # a method's meaning is not known here: nothing to show
        self.path = f"/{service}/{method.name}"
        self._request_class = message_factory.GetMessageClass(method.input_type)
        self._response_class = message_factory.GetMessageClass(method.output_type)

    async def call(self, arguments: dict[str, Any]) -> str:
        request = self._request_class()
        try:
            json_format.ParseDict(arguments, request, descriptor_pool=self._pool)
        except json_format.ParseError as exc:
            raise ToolError("INVALID_ARGUMENT", f"arguments do not form a valid request: {exc}") from None
        rpc = self._target.channel.unary_unary(self.path, request_serializer=self._request_class.SerializeToString,
                                               response_deserializer=self._response_class.FromString)
        rid = request_context.request_id.get()
        try:
            response = await rpc(request, timeout=self._target.timeout_s,
                                 metadata=[("x-request-id", rid)] if rid else None)
        except grpc.aio.AioRpcError as exc:
            raise ToolError(exc.code().name, exc.details() or exc.code().name) from None
        return json_format.MessageToJson(response, preserving_proto_field_name=True, indent=None,
                                         descriptor_pool=self._pool)


class GrpcTarget(RemoteTools):
    """One gRPC server whose unary methods are offered as tools."""

    kind = "gRPC"
    log = log

    def __init__(self, address: str, timeout_s: float) -> None:
        super().__init__(address, timeout_s)
        self._channel: grpc.aio.Channel | None = None

    @property
    def channel(self) -> grpc.aio.Channel:
        if self._channel is None:  # created on first use, on the serving event loop
            self._channel = grpc.aio.insecure_channel(self.address, interceptors=client_interceptors())
        return self._channel

    async def discover(self) -> list[GrpcMethodTool]:
        found = await discover(self.channel, self.timeout_s)
        return [GrpcMethodTool(self, m, found.pool) for s in found.services for m in s.methods
                if not m.client_streaming and not m.server_streaming]

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
