"""Regression tests for what the fuzzers (tests/fuzz) found, each reduced to its smallest form.

1. A bidirectional pattern stream whose Cancel arrived before the run had started — e.g. a
   request followed at once by a Cancel, or an invalid request followed by one — hung until the
   RPC's deadline (forever without one), holding a server task: the run's pump task was cancelled
   before it ever ran, so nothing woke the consumer.
2. Error messages quoted the request without bound ("unknown tool 'xxxx…'" with a 70 kB name):
   the status trailers outgrew gRPC's metadata limit, so gRPC clients got RESOURCE_EXHAUSTED
   instead of the error, and Envoy answered 502 and reset the shared upstream connection — failing
   other clients' requests in flight on it (502 "protocol error" for unrelated calls).
3. NaN or ±Infinity inside a google.protobuf.Struct (a JSON schema, tool parameters, tool call
   arguments, an edited plan's step arguments) raised in the JSON conversion: INTERNAL instead of
   INVALID_ARGUMENT naming the field.

Not a server bug, and not fixed here: grpcio's asyncio *client* reports INTERNAL "Internal error
from Core" instead of the server's status when the server ends a client-streaming call while the
client is still writing (grpc/grpc#36066); the fuzzer tells it apart by its debug string.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator

import grpc
import pytest
from google.protobuf import struct_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from llmmesh.common.v1 import common_pb2
from llmmesh.framework.bidi import BidiSession, Interrupted
from llmmesh.framework.errors import MAX_VIOLATIONS, FieldViolation, InvalidArgument, clip, to_status
from llmmesh.inference.v1 import inference_service_pb2 as ipb
from llmmesh.judge.v1 import judge_service_pb2 as jpb
from llmmesh.judge.v1 import judge_service_pb2_grpc as jpb_grpc
from llmmesh.reflection.v1 import reflection_service_pb2 as rpb
from llmmesh.reflection.v1 import reflection_service_pb2_grpc as rpb_grpc
from llmmesh.simulator.config import SimulatorConfig
from llmmesh.tooluse.v1 import tooluse_service_pb2 as tpb
from llmmesh.tooluse.v1 import tooluse_service_pb2_grpc as tpb_grpc

pytestmark = pytest.mark.xdist_group("security_findings")


async def test_an_interrupt_that_comes_before_the_source_starts_ends_the_relay_at_once() -> None:
    async def client() -> AsyncIterator[str]:
        yield "start"
        yield "cancel"

    started = False

    async def source() -> AsyncIterator[int]:
        nonlocal started
        started = True
        yield 1

    async with BidiSession(client(), lambda r: r == "cancel") as session:
        assert await session.next() == "start"
        async with asyncio.timeout(2):
            await session.interrupt.wait()  # the reader has seen the Cancel before the run starts
            events = [e async for e in session.until_interrupted(source())]
    assert len(events) == 1 and isinstance(events[0], Interrupted) and not started


async def test_request_then_cancel_never_hangs_a_pattern_stream(inference_mesh) -> None:
    cancel = common_pb2.Cancel(reason="changed my mind")
    async with inference_mesh(SimulatorConfig(name="a", models=("m",)), services=("inference", "judge", "reflection")) \
            as m:
        judge, reflection = jpb_grpc.JudgeServiceStub(m.channel), rpb_grpc.ReflectionServiceStub(m.channel)
        calls = [
            lambda: judge.EvaluateStream(iter([jpb.EvaluateStreamRequest(evaluate=jpb.EvaluateRequest(question="q")),
                                               jpb.EvaluateStreamRequest(cancel=cancel)]), timeout=10),
            lambda: judge.EvaluateStream(iter([jpb.EvaluateStreamRequest(evaluate=jpb.EvaluateRequest(
                question="q", answer="a", model="m")), jpb.EvaluateStreamRequest(cancel=cancel)]), timeout=10),
            lambda: reflection.ImproveStream(iter([rpb.ImproveStreamRequest(improve=rpb.ImproveRequest(
                task="t", model="m")), rpb.ImproveStreamRequest(cancel=cancel)]), timeout=10),
        ]
        for _ in range(10):
            for call in calls:
                started = time.monotonic()
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    async for _event in call():
                        pass
                assert err.value.code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.INVALID_ARGUMENT), err.value
                assert time.monotonic() - started < 3


async def test_huge_quoted_input_cannot_blow_up_the_status_trailers(inference_mesh) -> None:
    async with inference_mesh(SimulatorConfig(name="a", models=("m",)), services=("inference", "tooluse")) as m:
        tools = tpb_grpc.ToolUseServiceStub(m.channel)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await tools.Execute(tpb.ExecuteRequest(prompt="p", tools=["x" * 200_000, *(f"t{i}" for i in range(40))]),
                                timeout=10)
    # The client got the real error (not "metadata size exceeds hard limit"), small and complete.
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(err.value)
    assert status is not None and len(status.SerializeToString()) < 4096
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    assert len(bad.field_violations) == MAX_VIOLATIONS + 1
    assert "more invalid fields" in bad.field_violations[-1].description
    assert bad.field_violations[0].field == "tools[0]" and bad.field_violations[0].description.endswith("…")


def test_statuses_are_clipped_in_utf8_bytes() -> None:
    assert clip("😀" * 200, 20) == "😀" * 4 + "…"  # never half a character
    assert clip("short", 20) == "short"
    status = to_status(InvalidArgument([FieldViolation("f" * 10_000, "é" * 10_000)]))
    assert len(status.message.encode()) <= 400 and len(status.SerializeToString()) < 1200


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
async def test_non_finite_numbers_in_structs_are_invalid_arguments(inference_mesh, bad: float) -> None:
    schema = struct_pb2.Struct()
    schema.update({"type": "object", "properties": {"x": {"maximum": bad}}})
    async with inference_mesh(SimulatorConfig(name="a", models=("m",))) as m:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            async for _ in m.stub.Generate(ipb.GenerateRequest(prompt="p", model="m", json_schema=schema), timeout=10):
                pass
        with pytest.raises(grpc.aio.AioRpcError) as err2:
            await m.stub.CompleteChat(ipb.CompleteChatRequest(model="m", messages=[
                ipb.Message(role=ipb.ROLE_USER, content="hi")], tools=[ipb.Tool(name="t", parameters=schema)]),
                timeout=10)
    for e, field in ((err.value, "json_schema"), (err2.value, "tools[0].parameters")):
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e
        bad_request = error_details_pb2.BadRequest()
        assert rpc_status.from_call(e).details[0].Unpack(bad_request)
        assert bad_request.field_violations[0].field == field
