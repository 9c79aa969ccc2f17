"""Failover and the breaker through the real inference service, over real simulators with
injected faults: a failure before the first token or mid-stream, a silent backend, no backend
left, and a circuit that opens and closes again. The engine's own tests are in test_engine.py."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from llmmesh.inference.v1 import inference_service_pb2 as pb
from llmmesh.simulator.config import SimulatorConfig
from tests.support.rpc import collect
from tests.support.sims import cancelled, eventually, set_fault, stats


def text_of(events: list[pb.GenerateResponse]) -> str:
    return "".join(e.delta.text for e in events if e.WhichOneof("event") == "delta")


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
    # (Its fifth token, one word each; the relay may have coalesced them into fewer messages.)
    fifth = text_of(events).split()[4]
    assert fifth in continued["prompt_tail"]


async def test_silent_backend_trips_idle_timeout_and_fails_over(inference_mesh) -> None:
    async with inference_mesh(SimulatorConfig(name="a", models=("m",), preload=("m",)),
                              SimulatorConfig(name="b", models=("m",)), idle_timeout_s=0.3) as m:
        await set_fault(m.sims[0], "hang_after=2")
        events = await collect(m.stub.Generate(pb.GenerateRequest(model="m", prompt="x")))
        assert events[-1].done.failed_over
        await eventually(lambda: stats(m.sims[0]), timeout_s=2)
        assert (await eventually(lambda: cancelled(m.sims[0]), timeout_s=3)) >= 1


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
