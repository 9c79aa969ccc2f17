"""Routing, backpressure and cancellation against real simulators, through the real service.
Failover and the breaker have their own home: ./failover."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from llmmesh.inference.v1 import inference_service_pb2 as pb
from llmmesh.simulator.config import SimulatorConfig
from tests.support.rpc import collect
from tests.support.sims import cancelled, eventually
from tests.support.streams import collapsed


async def test_generate_streams_tokens_and_ends_with_done(inference_mesh) -> None:
    async with inference_mesh(SimulatorConfig(name="a", tokens=12)) as m:
        events = await collect(m.stub.Generate(pb.GenerateRequest(model="smollm2:135m", prompt="hi")))
    kinds = [e.WhichOneof("event") for e in events]
    # Deltas (as many messages as the relay coalesced the tokens into), then done, which counts them.
    assert set(kinds[:-1]) == {"delta"} and kinds[-1] == "done"
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


async def test_beyond_capacity_a_request_waits_its_turn_reporting_its_place(inference_mesh) -> None:
    async with inference_mesh(SimulatorConfig(name="a", models=("m",), token_delay_s=0.05, tokens=6),
                              max_inflight_per_backend=1) as m:
        first = m.stub.Generate(pb.GenerateRequest(model="m", prompt="slow"))
        await first.read()
        second = await collect(m.stub.Generate(pb.GenerateRequest(model="m", prompt="second")))
        while await first.read() != grpc.aio.EOF:
            pass
    kinds = [e.WhichOneof("event") for e in second]
    assert collapsed(kinds) == ["queued", "delta", "done"] and second[-1].done.output_tokens == 6, kinds
    assert (second[0].queued.position, second[0].queued.queue_length) == (1, 1)
    assert second[-1].done.queue_wait_ms > 100  # the first's remaining tokens, at 50 ms each


async def test_with_no_room_to_wait_saturation_is_resource_exhausted_with_retry_info(inference_mesh) -> None:
    async with inference_mesh(SimulatorConfig(name="a", models=("m",), token_delay_s=0.05),
                              max_inflight_per_backend=1, queue_max_length=0) as m:
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
        await eventually(lambda: cancelled(m.sims[0]), timeout_s=2, interval_s=0.01)
        elapsed = loop.time() - t0
    # Not a timing assertion on speed, a bound on "it happened at all, promptly".
    assert elapsed < 2


async def test_deadline_bounds_the_backend_call(inference_mesh) -> None:
    async with inference_mesh(SimulatorConfig(name="a", models=("m",), token_delay_s=0.1)) as m:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await collect(m.stub.Generate(pb.GenerateRequest(model="m", prompt="x"), timeout=0.4))
        assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert await eventually(lambda: cancelled(m.sims[0]), timeout_s=3) == 1
