"""Routing, failover, breaker, backpressure and cancellation against real simulators."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from llmmesh.inference.v1 import inference_service_pb2 as pb
from llmmesh.simulator.config import SimulatorConfig
from tests.support.sims import eventually, set_fault, stats


async def collect(call) -> list[pb.GenerateResponse]:
    return [ev async for ev in call]


def text_of(events: list[pb.GenerateResponse]) -> str:
    return "".join(e.delta.text for e in events if e.WhichOneof("event") == "delta")


async def test_generate_streams_tokens_and_ends_with_done(inference_mesh) -> None:
    async with inference_mesh(SimulatorConfig(name="a", tokens=12)) as m:
        events = await collect(m.stub.Generate(pb.GenerateRequest(model="smollm2:135m", prompt="hi")))
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds == ["delta"] * 12 + ["done"]
    done = events[-1].done
    assert (done.backend, done.model, done.output_tokens, done.failed_over) == ("a", "smollm2:135m", 12, False)
    assert done.time_to_first_token_ms > 0 and done.total_ms >= done.time_to_first_token_ms
    assert done.prompt_tokens > 0


async def test_unknown_model_is_not_found_and_lists_available(inference_mesh) -> None:
    async with inference_mesh(SimulatorConfig(name="a", models=("m1", "m2"))) as m:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await collect(m.stub.Generate(pb.GenerateRequest(model="nope", prompt="hi")))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert "m1:latest, m2:latest" in err.value.details()
    info = error_details_pb2.ResourceInfo()
    assert rpc_status.from_call(err.value).details[0].Unpack(info) and info.resource_name == "nope"


async def test_routing_follows_inventory_and_aliases(inference_mesh) -> None:
    async with inference_mesh(SimulatorConfig(name="a", models=("m1",)), SimulatorConfig(name="b", models=("m2",)),
                              aliases=(("fast", "m2"),)) as m:
        for model, backend in (("m1", "a"), ("m2", "b"), ("fast", "b")):
            events = await collect(m.stub.Generate(pb.GenerateRequest(model=model, prompt="x")))
            assert events[-1].done.backend == backend, model
        listed = await m.stub.ListModels(pb.ListModelsRequest())
    by_name = {mi.name: mi for mi in listed.models}
    assert list(by_name["m2:latest"].aliases) == ["fast"] and list(by_name["m1:latest"].backends) == ["a"]


async def test_prefers_backend_with_model_loaded(inference_mesh) -> None:
    async with inference_mesh(SimulatorConfig(name="a", models=("m1",)),
                              SimulatorConfig(name="b", models=("m1",), preload=("m1",))) as m:
        backends = {(await collect(m.stub.Generate(pb.GenerateRequest(model="m1", prompt=str(i)))))[-1].done.backend
                    for i in range(4)}
    assert backends == {"b"}


async def test_failure_before_first_token_retries_elsewhere(inference_mesh) -> None:
    async with inference_mesh(SimulatorConfig(name="a", models=("m",), preload=("m",)),
                              SimulatorConfig(name="b", models=("m",))) as m:
        await set_fault(m.sims[0], "busy")
        events = await collect(m.stub.Generate(pb.GenerateRequest(model="m", prompt="x")))
    done = events[-1].done
    assert done.backend == "b" and done.failed_over and list(done.backends) == ["a", "b"]
    assert len(text_of(events).split()) == 32


async def test_backend_dying_mid_stream_continues_on_another(inference_mesh) -> None:
    async with inference_mesh(SimulatorConfig(name="a", models=("m",), preload=("m",)),
                              SimulatorConfig(name="b", models=("m",))) as m:
        await set_fault(m.sims[0], "drop_after=5")
        events = await collect(m.stub.Generate(pb.GenerateRequest(model="m", prompt="x")))
        sim_b = await stats(m.sims[1])
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds[-1] == "done" and kinds.count("done") == 1 and "error" not in kinds
    done = events[-1].done
    assert done.failed_over and list(done.backends) == ["a", "b"]
    # The continuation was sent the delivered prefix as an assistant message.
    continued = sim_b["recent"][-1]
    assert continued["path"] == "/api/chat"
    first_five = "".join(e.delta.text for e in events[:5])
    assert first_five.strip().split()[-1] in continued["prompt_tail"]


async def test_silent_backend_trips_idle_timeout_and_fails_over(inference_mesh) -> None:
    async with inference_mesh(SimulatorConfig(name="a", models=("m",), preload=("m",)),
                              SimulatorConfig(name="b", models=("m",)), idle_timeout_s=0.3) as m:
        await set_fault(m.sims[0], "hang_after=2")
        events = await collect(m.stub.Generate(pb.GenerateRequest(model="m", prompt="x")))
        assert events[-1].done.failed_over
        await eventually(lambda: stats(m.sims[0]), timeout_s=2)
        assert (await eventually(lambda: _cancelled(m.sims[0]), timeout_s=3)) >= 1


async def _cancelled(sim) -> int:
    return (await stats(sim))["cancelled"]


async def test_no_backend_left_ends_stream_with_error_event_and_unavailable(inference_mesh) -> None:
    async with inference_mesh(SimulatorConfig(name="a", models=("m",)), SimulatorConfig(name="b", models=("m",))) as m:
        for sim in m.sims:
            await set_fault(sim, "fail_at_chunk=2")
        events = []
        with pytest.raises(grpc.aio.AioRpcError) as err:
            async for ev in m.stub.Generate(pb.GenerateRequest(model="m", prompt="x")):
                events.append(ev)
    assert events[-1].WhichOneof("event") == "error"
    assert events[-1].error.code == grpc.StatusCode.UNAVAILABLE.value[0]
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    retry = error_details_pb2.RetryInfo()
    assert rpc_status.from_call(err.value).details[0].Unpack(retry)


async def test_repeated_failures_open_the_circuit(inference_mesh) -> None:
    async with inference_mesh(SimulatorConfig(name="a", models=("m",), preload=("m",)),
                              SimulatorConfig(name="b", models=("m",)), breaker_failures=2, breaker_open_s=30) as m:
        await set_fault(m.sims[0], "status=500")
        for i in range(3):
            events = await collect(m.stub.Generate(pb.GenerateRequest(model="m", prompt=str(i))))
            assert events[-1].done.backend == "b"
        backends = {b.name: b for b in (await m.stub.ListBackends(pb.ListBackendsRequest())).backends}
        a_requests = (await stats(m.sims[0]))["endpoints"].get("/api/generate", 0)
    assert backends["a"].circuit == pb.CIRCUIT_STATE_OPEN
    assert backends["b"].circuit == pb.CIRCUIT_STATE_CLOSED
    assert a_requests == 2  # once open, the broken backend is no longer tried


async def test_saturated_backends_answer_resource_exhausted(inference_mesh) -> None:
    async with inference_mesh(SimulatorConfig(name="a", models=("m",), token_delay_s=0.05),
                              max_inflight_per_backend=1) as m:
        first = m.stub.Generate(pb.GenerateRequest(model="m", prompt="slow"))
        await first.read()
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await collect(m.stub.Generate(pb.GenerateRequest(model="m", prompt="second")))
        first.cancel()
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    retry = error_details_pb2.RetryInfo()
    assert rpc_status.from_call(err.value).details[0].Unpack(retry)


async def test_client_cancel_closes_the_backend_request(inference_mesh) -> None:
    async with inference_mesh(SimulatorConfig(name="a", models=("m",), token_delay_s=0.05)) as m:
        call = m.stub.Generate(pb.GenerateRequest(model="m", prompt="long"))
        await call.read()
        await call.read()
        call.cancel()
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await eventually(lambda: _cancelled(m.sims[0]), timeout_s=2, interval_s=0.01)
        elapsed = loop.time() - t0
    # Not a timing assertion on speed, a bound on "it happened at all, promptly".
    assert elapsed < 2


async def test_deadline_bounds_the_backend_call(inference_mesh) -> None:
    async with inference_mesh(SimulatorConfig(name="a", models=("m",), token_delay_s=0.1)) as m:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await collect(m.stub.Generate(pb.GenerateRequest(model="m", prompt="x"), timeout=0.4))
        assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert await eventually(lambda: _cancelled(m.sims[0]), timeout_s=3) == 1


async def test_a_successful_trial_closes_a_half_open_circuit(inference_mesh) -> None:
    async with inference_mesh(SimulatorConfig(name="a", models=("m",), preload=("m",)),
                              SimulatorConfig(name="b", models=("m",), preload=("m",)),
                              breaker_failures=1, breaker_open_s=0.2) as m:
        await set_fault(m.sims[0], "status=500")
        for i in range(2):
            await collect(m.stub.Generate(pb.GenerateRequest(model="m", prompt=f"trip {i}")))
        await set_fault(m.sims[0], "")

        async def circuit_of_a() -> int:
            await collect(m.stub.Generate(pb.GenerateRequest(model="m", prompt="probe")))
            listed = (await m.stub.ListBackends(pb.ListBackendsRequest())).backends
            return next(b.circuit for b in listed if b.name == "a")

        assert await eventually(lambda: _is_closed(circuit_of_a), timeout_s=5)


async def _is_closed(circuit_of) -> bool:
    return await circuit_of() == pb.CIRCUIT_STATE_CLOSED
