"""A server that ends a streaming call before reading it (a refused key, an unknown method): the
client's failed writes report the server's status, not grpc.aio's INTERNAL "Internal error from
Core" (grpc/grpc#36066). The race is made likely by writing large messages; without the shim most
of these calls end INTERNAL (measured with grpcio 1.85.4: 277 of 300)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest

from llmmesh.framework import delivered_status as server_shim
from llmmesh_client import delivered_status as sdk_shim

_PATH = "/test.Refusing/Talk"
_CALLS = 40


async def _refuse(requests: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, "no key")
    yield b""  # a generator: the handler's shape


class _Refusing(grpc.GenericRpcHandler):
    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        return grpc.stream_stream_rpc_method_handler(_refuse)


async def _codes(keep: Callable[[Any], Any]) -> set[grpc.StatusCode]:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((_Refusing(),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    codes: set[grpc.StatusCode] = set()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            talk = channel.stream_stream(_PATH)
            for _ in range(_CALLS):
                call = keep(talk())
                try:
                    for _ in range(64):
                        await call.write(b"x" * 65536)
                    await call.read()
                except grpc.aio.AioRpcError as err:
                    codes.add(err.code())
                except asyncio.InvalidStateError:  # the status was known before the write began
                    codes.add(await call.code())
    finally:
        await server.stop(None)
    return codes


@pytest.mark.parametrize("keep", [sdk_shim.keep_delivered_status, server_shim.keep_delivered_status],
                         ids=["sdk", "server"])
async def test_failed_writes_report_the_servers_status(keep: Callable[[Any], Any]) -> None:
    assert await _codes(keep) == {grpc.StatusCode.UNAUTHENTICATED}

