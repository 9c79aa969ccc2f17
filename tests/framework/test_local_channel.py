"""In-process calls (llmmesh.framework.local_channel) to the real inference service over a simulator:
the same answers, statuses, error details and books as the same calls over gRPC, and deadlines and
cancellation that reach the backend."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from prometheus_client import CollectorRegistry

from llmmesh.common.v1 import common_pb2
from llmmesh.framework import request_context
from llmmesh.inference.v1 import inference_service_pb2 as pb
from llmmesh.inference.v1 import inference_service_pb2_grpc as pb_grpc
from llmmesh.simulator.runner import RunningSimulator
from tests.support.rpc import drain, violations
from tests.support.sims import cancelled, sim, stats

MODEL = "m"


def chat(text: str = "hi", max_tokens: int = 5, model: str = MODEL) -> pb.CompleteChatStreamRequest:
    return pb.CompleteChatStreamRequest(model=model, messages=[pb.Message(role=pb.ROLE_USER, content=text)],
                                        options=common_pb2.GenerationOptions(max_tokens=max_tokens),
                                        cache=common_pb2.CACHE_MODE_BYPASS)


def handled(registry: CollectorRegistry, method: str, code: str) -> float:
    return registry.get_sample_value("grpc_server_handled_total", {
        "grpc_type": "server_stream", "grpc_service": "llmmesh.inference.v1.InferenceService",
        "grpc_method": method, "grpc_code": code}) or 0.0


async def test_a_stream_answers_and_counts_as_over_grpc(inference_mesh, registry: CollectorRegistry) -> None:
    async with inference_mesh(sim()) as mesh:
        local = pb_grpc.InferenceServiceStub(mesh.server.local)
        over_grpc, err = await drain(mesh.stub.CompleteChatStream(chat(), metadata=(("x-request-id", "net"),)))
        assert err is None
        in_process, err = await drain(local.CompleteChatStream(chat(), metadata=(("x-request-id", "local"),)))
        assert err is None

        def text(events: list[pb.CompleteChatStreamResponse]) -> str:
            return "".join(e.delta.text for e in events if e.HasField("delta"))

        assert text(in_process) == text(over_grpc) and len(text(in_process).split()) == 5
        assert in_process[-1].done.output_tokens == over_grpc[-1].done.output_tokens == 5
        # The same interceptors counted both.
        assert handled(registry, "CompleteChatStream", "OK") == 2
        # Unary calls too.
        models = await local.ListModels(pb.ListModelsRequest(), timeout=5)
        assert [m.name for m in models.models] == ["m:latest"]
        # The handler ran in a context of its own: nothing of the call leaked into the caller's.
        assert request_context.request_id.get() in (None, "")


async def test_bad_input_fails_with_the_fields_named(inference_mesh) -> None:
    async with inference_mesh(sim()) as mesh:
        local = pb_grpc.InferenceServiceStub(mesh.server.local)
        _, err = await drain(local.CompleteChatStream(pb.CompleteChatStreamRequest(model=MODEL)))
        assert err is not None and "messages" in violations(err)
        with pytest.raises(grpc.aio.AioRpcError) as unary:
            await local.CompleteChat(pb.CompleteChatRequest(model=MODEL, messages=[
                pb.Message(role=pb.ROLE_USER, content="hi")], options=common_pb2.GenerationOptions(max_tokens=-1)))
        assert "options.max_tokens" in violations(unary.value)
        _, err = await drain(local.CompleteChatStream(chat(model="no-such-model")))
        assert err is not None and err.code() == grpc.StatusCode.NOT_FOUND


async def test_a_deadline_ends_the_call_and_the_backend_request(inference_mesh) -> None:
    async with inference_mesh(sim(token_delay_s=0.2, tokens=50)) as mesh:
        local = pb_grpc.InferenceServiceStub(mesh.server.local)
        events, err = await drain(local.CompleteChatStream(chat(max_tokens=50), timeout=0.5))
        assert err is not None and err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert len([e for e in events if e.HasField("delta")]) < 50  # ended mid-answer
        assert await eventually_cancelled(mesh.sims[0])


async def test_cancelling_the_call_cancels_the_backend_request(inference_mesh) -> None:
    async with inference_mesh(sim(token_delay_s=0.1, tokens=50)) as mesh:
        local = pb_grpc.InferenceServiceStub(mesh.server.local)
        call = local.CompleteChatStream(chat(max_tokens=50))
        first = await anext(aiter(call))
        assert first.WhichOneof("event") in ("delta", "queued")
        assert call.cancel() and not call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await anext(aiter(call))
        assert await eventually_cancelled(mesh.sims[0])
        assert (await stats(mesh.sims[0]))["completed"] == 0


async def test_an_unknown_method_is_unimplemented(inference_mesh) -> None:
    async with inference_mesh(sim()) as mesh:
        call = mesh.server.local.unary_stream("/llmmesh.inference.v1.InferenceService/NoSuchMethod")(
            pb.CompleteChatStreamRequest())
        _, err = await drain(call)
        assert err is not None and err.code() == grpc.StatusCode.UNIMPLEMENTED


async def eventually_cancelled(running: RunningSimulator) -> bool:
    """The simulator counts one generation cancelled by its caller within 5 s."""
    for _ in range(100):
        if await cancelled(running) == 1:
            return True
        await asyncio.sleep(0.05)
    return False
