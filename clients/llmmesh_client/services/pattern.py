"""What the six pattern services share: a unary run and a bidi run from the same keyword fields."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Any, TypeVar

from google.protobuf import message_factory
from google.protobuf.message import Message

from llmmesh_client._proto.llmmesh.common.v1 import common_pb2
from llmmesh_client.convert import build
from llmmesh_client.methods import Method
from llmmesh_client.sessions import AsyncRunStream
from llmmesh_client.transport import Transport

Options = common_pb2.GenerationOptions | Mapping[str, Any]
S = TypeVar("S", bound=AsyncRunStream[Any])


class PatternService:
    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def _unary(self, method: Method, request_cls: type[Message], fields: Mapping[str, Any],
               timeout: float | None, request_id: str | None) -> Awaitable[Any]:
        return self._t.unary(method, build(request_cls, fields), timeout=timeout, request_id=request_id)

    def _stream(self, method: Method, start: str, request_cls: type[Message], fields: Mapping[str, Any],
                timeout: float | None, request_id: str | None, stream_cls: type[S]) -> S:
        """A run on `method`'s bidi stream: the first message sets `start`; `cancel` sends Cancel."""
        stream_request = message_factory.GetMessageClass(method.descriptor.input_type)
        first = stream_request(**{start: build(request_cls, fields)})
        call = self._t.bidi(method, timeout=timeout, request_id=request_id)
        return stream_cls(call, first, lambda reason: stream_request(cancel=common_pb2.Cancel(reason=reason)))
