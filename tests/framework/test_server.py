"""The framework on a real grpc.aio server over real channels: health, reflection, errors, metrics,
graceful stop."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from llmmesh.framework import services
from llmmesh.framework.errors import FieldViolation, InvalidArgument
from llmmesh.framework.server import create_server
from llmmesh.judge.v1 import judge_service_pb2 as judge_pb2
from llmmesh.judge.v1 import judge_service_pb2_grpc as judge_grpc
from llmmesh.topology.description import SERVICES
from tests.support.rpc import violations


class ProbeJudge(judge_grpc.JudgeServiceServicer):
    """A judge whose behaviour is chosen by the question, to drive the framework's paths."""

    async def Evaluate(self, request: judge_pb2.EvaluateRequest, context: object) -> judge_pb2.EvaluateResponse:
        if request.question == "invalid":
            raise InvalidArgument([FieldViolation("answer", "must not be empty")])
        if request.question == "crash":
            raise RuntimeError("secret internal detail")
        return judge_pb2.EvaluateResponse(score=1.0, verdict=judge_pb2.VERDICT_PASS, judge="probe")

    async def EvaluateStream(self, requests: AsyncIterator[judge_pb2.EvaluateStreamRequest],
                             context: object) -> AsyncIterator[judge_pb2.EvaluateStreamResponse]:
        async for req in requests:
            for i in range(5):
                yield judge_pb2.EvaluateStreamResponse(order_verdict=judge_pb2.PairwiseOrder(order=str(i)))
                try:
                    await asyncio.sleep(0.1)
                except asyncio.CancelledError:
                    await asyncio.sleep(0.2)  # unwinding takes a while, as closing a backend call does
                    raise
            if req.evaluate.question == "crash":
                raise RuntimeError("secret internal detail")
            yield judge_pb2.EvaluateStreamResponse(result=judge_pb2.EvaluateResponse(verdict=judge_pb2.VERDICT_PASS))
            return


def build_probe(deps: services.ServiceDeps) -> ProbeJudge:
    return ProbeJudge()


@pytest.fixture
async def server(settings, registry, monkeypatch):
    monkeypatch.setitem(services.IMPLEMENTATIONS, "judge", f"{__name__}:build_probe")
    srv, port = create_server(settings, registry)
    await srv.start()
    yield srv, port
    await srv.stop()


async def test_health_per_service_and_reflection_lists_the_mesh(server) -> None:
    _, port = server
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        for spec in SERVICES:
            resp = await stub.Check(health_pb2.HealthCheckRequest(service=spec.grpc_service))
            assert resp.status == health_pb2.HealthCheckResponse.SERVING, spec.name
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND

        refl = reflection_pb2_grpc.ServerReflectionStub(ch)
        call = refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        names = {s.name async for r in call for s in r.list_services_response.service}
    assert {s.grpc_service for s in SERVICES} <= names
    assert "grpc.health.v1.Health" in names


async def test_service_without_implementation_answers_unimplemented(settings, registry, monkeypatch) -> None:
    from llmmesh.jury.v1 import jury_service_pb2, jury_service_pb2_grpc

    monkeypatch.delitem(services.IMPLEMENTATIONS, "jury", raising=False)
    srv, port = create_server(settings, registry)
    await srv.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await jury_service_pb2_grpc.JuryServiceStub(ch).Evaluate(jury_service_pb2.EvaluateRequest())
    await srv.stop()
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_invalid_argument_carries_field_violations(server) -> None:
    _, port = server
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await judge_grpc.JudgeServiceStub(ch).Evaluate(judge_pb2.EvaluateRequest(question="invalid"))
    assert violations(err.value) == {"answer": "must not be empty"}


async def test_unexpected_error_is_generic_internal(server) -> None:
    _, port = server
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        call = judge_grpc.JudgeServiceStub(ch).Evaluate(judge_pb2.EvaluateRequest(question="crash"),
                                                         metadata=[("x-request-id", "rid-42")])
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
    assert err.value.code() == grpc.StatusCode.INTERNAL
    assert "secret" not in err.value.details()
    assert "rid-42" in err.value.details()


async def test_stream_failure_ends_with_error_event_then_status(server) -> None:
    _, port = server
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        call = judge_grpc.JudgeServiceStub(ch).EvaluateStream(
            iter([judge_pb2.EvaluateStreamRequest(evaluate=judge_pb2.EvaluateRequest(question="crash"))]))
        events = []
        with pytest.raises(grpc.aio.AioRpcError) as err:
            async for ev in call:
                events.append(ev)
    assert [e.WhichOneof("event") for e in events] == ["order_verdict"] * 5 + ["error"]
    assert events[-1].error.code == grpc.StatusCode.INTERNAL.value[0]
    assert err.value.code() == grpc.StatusCode.INTERNAL


async def test_metrics_endpoint_counts_handled_rpcs(server) -> None:
    srv, port = server
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        await judge_grpc.JudgeServiceStub(ch).Evaluate(judge_pb2.EvaluateRequest(question="ok"))
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://127.0.0.1:{srv.metrics.port}/metrics")).text
    assert ('grpc_server_handled_total{grpc_code="OK",grpc_method="Evaluate",'
            'grpc_service="llmmesh.judge.v1.JudgeService",grpc_type="unary"} 1.0') in text


async def test_graceful_stop_drains_inflight_stream_and_reports_not_serving(settings, registry,
                                                                              monkeypatch) -> None:
    monkeypatch.setitem(services.IMPLEMENTATIONS, "judge", f"{__name__}:build_probe")
    srv, port = create_server(dataclasses.replace(settings, drain_delay_s=0.3), registry)
    await srv.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        call = judge_grpc.JudgeServiceStub(ch).EvaluateStream(
            iter([judge_pb2.EvaluateStreamRequest(evaluate=judge_pb2.EvaluateRequest(question="ok"))]))
        first = await call.read()
        assert first.WhichOneof("event") == "order_verdict"
        stopping = srv.stop()
        await asyncio.sleep(0.1)
        status = await health_pb2_grpc.HealthStub(ch).Check(
            health_pb2.HealthCheckRequest(service="llmmesh.judge.v1.JudgeService"))
        assert status.status == health_pb2.HealthCheckResponse.NOT_SERVING
        rest = []
        while (ev := await call.read()) is not grpc.aio.EOF:
            rest.append(ev)
        await stopping
    assert rest[-1].WhichOneof("event") == "result"
    assert await call.code() == grpc.StatusCode.OK


async def test_clients_dropping_streams_do_not_hurt_the_server(server) -> None:
    _, port = server
    for _ in range(10):
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            call = judge_grpc.JudgeServiceStub(ch).EvaluateStream(
                iter([judge_pb2.EvaluateStreamRequest(evaluate=judge_pb2.EvaluateRequest(question="ok"))]))
            await call.read()
            call.cancel()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        resp = await judge_grpc.JudgeServiceStub(ch).Evaluate(judge_pb2.EvaluateRequest(question="ok"))
    assert resp.verdict == judge_pb2.VERDICT_PASS
