"""The admission queue through the real inference service (grpc.aio, port 0) over real simulators
with one slot: Chat turns report their place and CompleteChat just waits, priority from the field
or the header (and refused when malformed), interactive overtaking batch, a pattern service's model
client reading through queue events and passing its caller's class on, a crowd of cancelled
callers leaving nothing behind, and the two ends of a wait: the caller's deadline (DEADLINE_EXCEEDED)
and the queue's bound (RESOURCE_EXHAUSTED with RetryInfo)."""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from prometheus_client import CollectorRegistry

from llmmesh.common.model_call import ChatMessage
from llmmesh.common.v1 import common_pb2
from llmmesh.inference.v1 import inference_service_pb2 as pb
from llmmesh.judge.v1 import judge_service_pb2 as judge_pb
from llmmesh.judge.v1 import judge_service_pb2_grpc as judge_grpc
from llmmesh.patterns.model_client import ModelClient
from llmmesh.simulator.config import ScriptRule, SimulatorConfig
from tests.support.rpc import collect, drain, violations
from tests.support.sims import eventually, sim, stats
from tests.support.streams import collapsed

# Generations of 16 tokens at 40 ms: long enough that a waiter's rate-limited updates (every 250 ms)
# come out while the one ahead of it still runs.
SLOW = SimulatorConfig(name="a", models=("m",), token_delay_s=0.04, tokens=16)


def user(text: str) -> pb.Message:
    return pb.Message(role=pb.ROLE_USER, content=text)


async def occupy(stub) -> grpc.aio.UnaryStreamCall:
    """A generation holding the only slot (its first token read)."""
    call = stub.Generate(pb.GenerateRequest(model="m", prompt="occupy"))
    assert (await call.read()).WhichOneof("event") == "delta"
    return call


def waiting(registry: CollectorRegistry) -> float:
    """Requests waiting in model m's queue, as the depth gauge says."""
    return sum(registry.get_sample_value("llmmesh_inference_queue_depth", {"model": "m", "priority": p}) or 0
               for p in ("interactive", "batch"))


async def finish(call: grpc.aio.UnaryStreamCall) -> None:
    while await call.read() != grpc.aio.EOF:
        pass


async def test_chat_turns_report_their_place_and_complete_chat_just_waits(
        inference_mesh, registry: CollectorRegistry) -> None:
    async with inference_mesh(SLOW, max_inflight_per_backend=1) as m:
        busy = await occupy(m.stub)
        unary = asyncio.ensure_future(m.stub.CompleteChat(pb.CompleteChatRequest(model="m", messages=[user("u")])))
        await eventually(lambda: waiting(registry) == 1)
        chat = await collect(m.stub.Chat(iter([pb.ChatRequest(turn=pb.ChatTurn(model="m", messages=[user("c")]))])))
        reply = await unary
        await finish(busy)
    kinds = [e.WhichOneof("event") for e in chat]
    assert collapsed(kinds) == ["queued", "queued", "delta", "done"] and chat[-1].done.output_tokens == 16, kinds
    # Behind CompleteChat, then first once it got the slot.
    assert [(e.turn, e.queued.position, e.queued.queue_length) for e in chat[:2]] == [(1, 2, 2), (1, 1, 1)]
    assert chat[-1].done.queue_wait_ms > reply.done.queue_wait_ms > 0 and reply.message.content


async def test_priority_comes_from_the_field_or_the_header_and_must_be_known(
        inference_mesh, registry: CollectorRegistry) -> None:
    async with inference_mesh(SLOW) as m:
        with pytest.raises(grpc.aio.AioRpcError) as header:
            await collect(m.stub.Generate(pb.GenerateRequest(model="m", prompt="x"),
                                          metadata=[("x-llmmesh-priority", "urgent")]))
        with pytest.raises(grpc.aio.AioRpcError) as field:
            await m.stub.CompleteChat(pb.CompleteChatRequest(model="m", messages=[user("x")], priority=7))
        batch = pb.GenerateRequest(model="m", prompt="x", priority=common_pb2.PRIORITY_BATCH)
        ok = await collect(m.stub.Generate(batch, metadata=[("x-llmmesh-priority", "interactive")]))
    assert "x-llmmesh-priority" in violations(header.value) and "priority" in violations(field.value)
    assert ok[-1].WhichOneof("event") == "done"  # the field wins over the header:
    assert registry.get_sample_value("llmmesh_inference_queue_wait_seconds_count",
                                     {"model": "m", "priority": "batch"}) == 1


async def test_interactive_overtakes_batch_in_the_queue(inference_mesh, registry: CollectorRegistry) -> None:
    async with inference_mesh(SLOW, max_inflight_per_backend=1) as m:
        busy = await occupy(m.stub)
        finished: list[str] = []

        async def generate(name: str, **request: object) -> list[pb.GenerateResponse]:
            events = await collect(m.stub.Generate(pb.GenerateRequest(model="m", prompt=name, **request),
                                                   metadata=[("x-llmmesh-priority", name)]))
            finished.append(name)
            return events

        batch = asyncio.create_task(generate("batch"))
        await eventually(lambda: registry.get_sample_value(
            "llmmesh_inference_queue_depth", {"model": "m", "priority": "batch"}) == 1)
        interactive = asyncio.create_task(generate("interactive"))
        await eventually(lambda: registry.get_sample_value(
            "llmmesh_inference_queue_depth", {"model": "m", "priority": "interactive"}) == 1)
        await finish(busy)
        batch_events, interactive_events = await batch, await interactive
    assert finished == ["interactive", "batch"]
    assert interactive_events[0].queued.position == 1
    # batch was first in line, second once interactive arrived, first again once it was served.
    assert [e.queued.position for e in batch_events if e.WhichOneof("event") == "queued"] == [1, 2, 1]


async def test_a_pattern_services_model_client_reads_through_queue_events(
        inference_mesh, registry: CollectorRegistry) -> None:
    async with inference_mesh(SLOW, max_inflight_per_backend=1) as m:
        client = ModelClient(f"127.0.0.1:{m.port}")
        try:
            busy = await occupy(m.stub)
            pending = asyncio.create_task(client.complete("m", [ChatMessage("user", "hi")]))
            await eventually(lambda: waiting(registry) == 1)
            await finish(busy)
            completion = await pending
        finally:
            await client.close()
    assert completion.text and completion.output_tokens == 16


async def test_many_cancelled_callers_leave_the_queue_empty_and_the_slot_free(
        inference_mesh, registry: CollectorRegistry) -> None:
    async with inference_mesh(SLOW, max_inflight_per_backend=1) as m:
        busy = await occupy(m.stub)
        calls = [m.stub.Generate(pb.GenerateRequest(model="m", prompt=f"w{i}")) for i in range(60)]
        firsts = await asyncio.gather(*(c.read() for c in calls))
        assert {f.WhichOneof("event") for f in firsts} == {"queued"}
        for c in calls:
            c.cancel()
        await eventually(lambda: waiting(registry) == 0)
        await finish(busy)
        after = await collect(m.stub.Generate(pb.GenerateRequest(model="m", prompt="after")))
        backend = await stats(m.sims[0])
    assert after[0].WhichOneof("event") == "delta"  # the slot was free: no wait
    assert registry.get_sample_value("llmmesh_backend_in_flight", {"backend": "a"}) == 0
    assert backend["started"] == 2  # the occupier and the last one: no cancelled caller reached it


async def test_a_pattern_runs_its_model_calls_in_its_callers_class(inference_mesh, registry: CollectorRegistry) -> None:
    verdict = ScriptRule(match="", response=json.dumps({"reasoning": "Scripted.", "score": 5}))
    async with inference_mesh(sim(verdict), services=("inference", "judge")) as m:
        judge = judge_grpc.JudgeServiceStub(m.channel)
        result = await judge.Evaluate(judge_pb.EvaluateRequest(question="2+2?", answer="4", model="m"),
                                      metadata=[("x-llmmesh-priority", "batch")])
    assert result.verdict == judge_pb.VERDICT_PASS
    assert registry.get_sample_value("llmmesh_inference_queue_wait_seconds_count",
                                     {"model": "m", "priority": "batch"}) == result.usage.model_calls


async def test_a_caller_whose_deadline_passes_in_the_queue_gets_deadline_exceeded_and_leaves_it(
        inference_mesh, registry: CollectorRegistry) -> None:
    async with inference_mesh(SLOW, max_inflight_per_backend=1) as m:
        busy = await occupy(m.stub)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await collect(m.stub.Generate(pb.GenerateRequest(model="m", prompt="hurry"), timeout=0.3))
        await eventually(lambda: waiting(registry) == 0)
        await finish(busy)
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert registry.get_sample_value("llmmesh_inference_queue_refused_total",
                                     {"model": "m", "priority": "interactive", "reason": "timeout"}) is None


async def test_a_wait_beyond_the_queues_bound_is_resource_exhausted_with_retry_info(
        inference_mesh, registry: CollectorRegistry) -> None:
    async with inference_mesh(SLOW, max_inflight_per_backend=1, queue_max_wait_s=0.2) as m:
        busy = await occupy(m.stub)
        events, err = await drain(m.stub.Generate(pb.GenerateRequest(model="m", prompt="patient")))
        await finish(busy)
    # It had said it was waiting; the refusal ends the stream as an explicit status with RetryInfo.
    assert [e.WhichOneof("event") for e in events] == ["queued", "error"]
    assert err is not None and err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    retry = error_details_pb2.RetryInfo()
    assert any(d.Unpack(retry) for d in rpc_status.from_call(err).details) and retry.retry_delay.ToNanoseconds() > 0
    assert registry.get_sample_value("llmmesh_inference_queue_refused_total",
                                     {"model": "m", "priority": "interactive", "reason": "timeout"}) == 1
