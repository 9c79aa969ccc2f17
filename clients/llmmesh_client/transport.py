"""The async call layer every typed method goes through: deadline, metadata, error mapping.

- Deadline: the call's `timeout=`, else the client's default for the method's kind.
- Metadata: `authorization: Bearer <key>` when an API key is set, and `x-request-id` (generated
  per call unless given), which every exception carries as `.request_id`.
- Errors: `grpc.RpcError` and stream `error` events become `LlmMeshError` subclasses.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Coroutine
from functools import cache
from typing import Any

import grpc
from google.protobuf.message import Message

from llmmesh_client.config import ClientConfig
from llmmesh_client.delivered_status import keep_delivered_status
from llmmesh_client.errors import LlmMeshError, from_rpc_error, from_status
from llmmesh_client.methods import Method

Metadata = tuple[tuple[str, str], ...]


def new_request_id() -> str:
    return uuid.uuid4().hex


@cache
def _has_error_event(cls: type[Message]) -> bool:
    field = cls.DESCRIPTOR.fields_by_name.get("error")
    return field is not None and field.message_type is not None \
        and field.message_type.full_name == "google.rpc.Status"


def raise_if_error(event: Message, request_id: str) -> None:
    """Raise the mapped exception if `event` is a stream's terminal `error` event."""
    if _has_error_event(type(event)) and event.HasField("error"):
        raise from_status(event.error, request_id)  # type: ignore[attr-defined]


class Transport:
    def __init__(self, channel: grpc.aio.Channel, config: ClientConfig) -> None:
        self.channel = channel
        self.config = config
        self._stubs: dict[type, Any] = {}

    def _callable(self, method: Method) -> Any:
        stub = self._stubs.get(method.stub_class)
        if stub is None:
            stub = self._stubs[method.stub_class] = method.stub_class(self.channel)
        return getattr(stub, method.name)

    def timeout(self, method: Method, timeout: float | None) -> float:
        return self.config.deadlines.for_kind(method.kind) if timeout is None else timeout

    def metadata(self, request_id: str) -> Metadata:
        md: list[tuple[str, str]] = [("x-request-id", request_id)]
        if self.config.api_key:
            md.append(("authorization", f"Bearer {self.config.api_key}"))
        return tuple(md)

    def unary(self, method: Method, request: Message, *, timeout: float | None = None,
              request_id: str | None = None) -> Coroutine[Any, Any, Any]:
        rid = request_id or new_request_id()
        return self._unary(method, request, self.timeout(method, timeout), rid)

    async def _unary(self, method: Method, request: Message, deadline_s: float, rid: str) -> Any:
        try:
            return await self._callable(method)(request, timeout=deadline_s, metadata=self.metadata(rid))
        except grpc.RpcError as err:
            raise from_rpc_error(err, rid) from err

    def server_stream(self, method: Method, request: Message, *, timeout: float | None = None,
                      request_id: str | None = None) -> AsyncIterator[Any]:
        """Events of a server stream; an `error` event is raised, and leaving early cancels the call."""
        rid = request_id or new_request_id()
        return self._server_stream(method, request, self.timeout(method, timeout), rid)

    async def _server_stream(self, method: Method, request: Message, deadline_s: float,
                             rid: str) -> AsyncIterator[Any]:
        call = self._callable(method)(request, timeout=deadline_s, metadata=self.metadata(rid))
        try:
            async for event in call:
                raise_if_error(event, rid)
                yield event
        except grpc.RpcError as err:
            raise from_rpc_error(err, rid) from err
        finally:
            call.cancel()

    def bidi(self, method: Method, *, timeout: float | None = None, request_id: str | None = None) -> BidiCall:
        rid = request_id or new_request_id()
        return BidiCall(lambda: self._callable(method)(timeout=self.timeout(method, timeout),
                                                       metadata=self.metadata(rid)), rid)


class BidiCall:
    """A bidirectional call started on first use, with serialised writes and mapped errors.

    Reads and writes may run concurrently (one reader, any number of writers): a chat STOP or a
    pattern Cancel is written while the events are being read.
    """

    def __init__(self, start: Any, request_id: str) -> None:
        self._start = start
        self._call: Any = None
        self._write_lock = asyncio.Lock()
        self._half_closed = False
        self.request_id = request_id

    @property
    def call(self) -> Any:
        if self._call is None:
            self._call = keep_delivered_status(self._start())
        return self._call

    async def write(self, request: Message) -> None:
        """Write `request`; raises the call's mapped error if the call has ended with one (the
        server refused it before reading: a wrong key, an unknown method)."""
        async with self._write_lock:
            call = self.call
            try:
                await call.write(request)
            except grpc.RpcError as err:
                raise from_rpc_error(err, self.request_id) from err
            except asyncio.InvalidStateError:
                if call.done() and await call.code() != grpc.StatusCode.OK:
                    await self.read()  # raises the call's status, mapped
                raise

    async def write_if_open(self, request: Message) -> bool:
        """Write unless the call has already ended (a late STOP or Cancel is harmless)."""
        if self._call is not None and (self._call.done() or self._half_closed):
            return False
        try:
            await self.write(request)
        except (asyncio.InvalidStateError, LlmMeshError):  # ended meanwhile: the reader reports how
            return False
        return True

    async def read(self) -> Any:
        """The next event, or None at the end of the stream. Raises on a failed call."""
        try:
            event = await self.call.read()
        except grpc.RpcError as err:
            raise from_rpc_error(err, self.request_id) from err
        return None if event is grpc.aio.EOF else event

    async def done_writing(self) -> None:
        if self._call is None or self._half_closed or self._call.done():
            return
        self._half_closed = True
        async with self._write_lock:
            try:
                await self._call.done_writing()
            except (grpc.RpcError, asyncio.InvalidStateError):
                pass

    @property
    def started(self) -> bool:
        return self._call is not None

    @property
    def done(self) -> bool:
        """The call has ended (it may not have started yet: then False)."""
        return self._call is not None and self._call.done()

    def cancel(self) -> None:
        if self._call is not None:
            self._call.cancel()
