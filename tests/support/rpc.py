"""Reading what a gRPC call gave back: the field violations of an INVALID_ARGUMENT, and every event
of a stream with the status it ended on."""

from __future__ import annotations

from collections.abc import AsyncIterable
from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


def violations(err: grpc.aio.AioRpcError) -> dict[str, str]:
    """field → description of every `google.rpc.BadRequest` violation of an INVALID_ARGUMENT."""
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (err.code(), err.details())
    status = rpc_status.from_call(err)
    assert status is not None, "the status carries no details"
    found: dict[str, str] = {}
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            found.update({v.field: v.description for v in bad.field_violations})
    assert found, "the status carries no google.rpc.BadRequest"
    return found


async def collect(events: AsyncIterable[Any]) -> list[Any]:
    """Every event of a stream (a status other than OK raises)."""
    return [e async for e in events]


async def drain(call: AsyncIterable[Any]) -> tuple[list[Any], grpc.aio.AioRpcError | None]:
    """Every event of a stream, and the error status it ended with (None when OK)."""
    events = []
    try:
        async for event in call:
            events.append(event)
    except grpc.aio.AioRpcError as err:
        return events, err
    return events, None


def error_info(status: Any) -> error_details_pb2.ErrorInfo:
    """The `google.rpc.ErrorInfo` among the details of a status (or of a stream's error event)."""
    info = error_details_pb2.ErrorInfo()
    assert any(d.Unpack(info) for d in status.details), status
    return info
