"""The admission queue end to end: the monolith behind the real Envoy (ingress and egress) over two
simulator processes that each take one generation at a time (and answer 503 beyond it), with the
inference service's cap at one per backend and a queue of four.

Requests beyond capacity wait instead of being refused (none reaches a full backend); the wait is
reported on gRPC streams and, transcoded by Envoy, on REST Server-Sent Events; a full queue answers
RESOURCE_EXHAUSTED with RetryInfo (HTTP 429 over REST); and a stream whose backend drops it
mid-generation while the other backend is full waits for that backend and completes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from llmmesh.common.v1 import common_pb2
from llmmesh.inference.v1 import inference_service_pb2 as pb
from llmmesh.inference.v1 import inference_service_pb2_grpc as pb_grpc
from llmmesh.launcher.up import Mesh
from tests.chaos.drills import all_backends_ready, eventually, put_fault, put_scripts, sim_url, sims_mesh
from tests.support.e2e import curl, split_http_response, sse_events
from tests.support.streams import collapsed

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e_admission"), pytest.mark.timeout(180)]

QUEUE = 4
SERVICE_ENV = {"LLMMESH_MAX_INFLIGHT_PER_BACKEND": "1", "LLMMESH_QUEUE_MAX_LENGTH": str(QUEUE),
               "LLMMESH_INVENTORY_REFRESH_S": "0.5", "LLMMESH_BACKOFF_S": "0.02"}
SIMS = ("sim1", "sim2")


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    with sims_mesh(tmp_path_factory.mktemp("e2e-admission"), sim_count=2, service_env=SERVICE_ENV) as mesh:

        async def prepare() -> None:
            for name in SIMS:
                # One generation at a time, like a GPU backend at its limit; 30 ms per token.
                await put_fault(sim_url(mesh, name), "token_delay_ms=30,max_concurrency=1")
                # A prompt ending in "fragile" is dropped after three frames (its continuation,
                # whose last message is the text so far, is not).
                await put_scripts(sim_url(mesh, name), [{"match": "fragile", "target": "last", "fault": "drop_after=3",
                                                         "response": " ".join(f"w{i}" for i in range(40))}])
            async with grpc.aio.insecure_channel(mesh.ingress) as channel:
                await all_backends_ready(channel)

        asyncio.run(prepare())
        yield mesh


@pytest.fixture
async def stub(mesh: Mesh) -> AsyncIterator[pb_grpc.InferenceServiceStub]:
    """A stub through the ingress, once the calls an earlier test cancelled have let their slots go."""
    async with grpc.aio.insecure_channel(mesh.ingress) as channel:
        stub = pb_grpc.InferenceServiceStub(channel)

        async def idle() -> bool:
            listed = await stub.ListBackends(pb.ListBackendsRequest(), timeout=5)
            return all(b.in_flight == 0 for b in listed.backends)

        await eventually(idle, 10, what="every backend slot free")
        yield stub


def request(prompt: str, max_tokens: int) -> pb.GenerateRequest:
    return pb.GenerateRequest(prompt=prompt, options=common_pb2.GenerationOptions(max_tokens=max_tokens))


async def occupy(stub: pb_grpc.InferenceServiceStub, n: int, max_tokens: int = 60) -> list[grpc.aio.UnaryStreamCall]:
    """`n` generations holding slots, each past its first token."""
    calls = [stub.Generate(request(f"occupy {i}", max_tokens), timeout=60) for i in range(n)]
    for call in calls:
        assert (await call.read()).WhichOneof("event") == "delta"
    return calls


async def to_the_end(call: grpc.aio.UnaryStreamCall) -> list[pb.GenerateResponse]:
    events = []
    while (event := await call.read()) != grpc.aio.EOF:
        events.append(event)
    return events


async def test_requests_beyond_capacity_wait_instead_of_being_refused(stub: pb_grpc.InferenceServiceStub) -> None:
    calls = [stub.Generate(request(f"crowd {i}", 8), timeout=60) for i in range(2 + QUEUE)]
    streams = await asyncio.gather(*(to_the_end(c) for c in calls))
    done = [s[-1].done for s in streams]
    assert all(s[-1].WhichOneof("event") == "done" for s in streams)
    # No attempt reached a full backend (it would have answered 503 and been retried elsewhere).
    assert all(d.attempts == 1 and d.output_tokens == 8 for d in done), done
    queued = [s for s in streams if s[0].WhichOneof("event") == "queued"]
    assert len(queued) >= QUEUE and all(1 <= s[0].queued.position <= s[0].queued.queue_length <= QUEUE
                                        for s in queued)
    # Those that waited, waited for a generation to end (8 tokens at 30 ms).
    assert sum(d.queue_wait_ms > 100 for d in done) >= QUEUE


async def test_the_wait_shows_on_rest_server_sent_events(mesh: Mesh, stub: pb_grpc.InferenceServiceStub) -> None:
    busy = await occupy(stub, 2)
    body = json.dumps({"prompt": "sse", "options": {"max_tokens": 4}})
    out = await asyncio.to_thread(curl, "-sN", f"http://{mesh.ingress}/api/v1/inference/generate", "-d", body,
                                  timeout_s=60)
    for call in busy:
        call.cancel()
    events = sse_events(out.stdout)
    assert collapsed([next(iter(e)) for e in events]) == ["queued", "delta", "done"], events
    assert events[-1]["done"]["output_tokens"] == 4
    assert events[0]["queued"] == {"position": 1, "queue_length": 1}
    assert events[-1]["done"]["queue_wait_ms"] > 100  # behind generations of 60 tokens at 30 ms


async def test_a_full_queue_is_resource_exhausted_with_retry_info(mesh: Mesh,
                                                                 stub: pb_grpc.InferenceServiceStub) -> None:
    busy = await occupy(stub, 2)
    waiting = [stub.Generate(request(f"wait {i}", 4), timeout=60) for i in range(QUEUE)]
    for call in waiting:
        assert (await call.read()).WhichOneof("event") == "queued"
    try:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await to_the_end(stub.Generate(request("one too many", 4), timeout=60))
        rest = await asyncio.to_thread(curl, "-si", f"http://{mesh.ingress}/api/v1/inference/generate", "-d",
                                       json.dumps({"prompt": "one too many"}))
    finally:
        for call in busy + waiting:
            call.cancel()
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "queue" in refused.value.details()
    retry = error_details_pb2.RetryInfo()
    assert any(d.Unpack(retry) for d in rpc_status.from_call(refused.value).details)
    assert retry.retry_delay.ToNanoseconds() > 0
    status, _, payload = split_http_response(rest.stdout)
    error = json.loads(payload)
    assert status == 429 and error["code"] == 8
    assert any(d["@type"] == "type.googleapis.com/google.rpc.RetryInfo" for d in error["details"]), error


async def test_a_stream_dropped_mid_generation_waits_for_the_full_survivor_and_completes(
        stub: pb_grpc.InferenceServiceStub) -> None:
    (busy,) = await occupy(stub, 1, max_tokens=40)  # ~1.2 s on one backend
    events = await to_the_end(stub.Generate(request("a fragile", 12), timeout=60))
    rest = await to_the_end(busy)
    done = events[-1].done
    kinds = [e.WhichOneof("event") for e in events]
    # It started at once on the free backend, which dropped it after three tokens; the continuation
    # waited (silently: tokens had flowed) for the occupied one and finished the twelve. Deltas are
    # counted by their text: a loaded machine may coalesce two tokens into one event.
    assert set(kinds[:-1]) == {"delta"} and kinds[-1] == "done", kinds
    words = "".join(e.delta.text for e in events[:-1]).split()
    assert len(words) == 12 and words[:3] == ["w0", "w1", "w2"], words
    assert done.failed_over and len(done.backends) == 2 and done.backends[0] != done.backends[1]
    assert done.backend == rest[-1].done.backend and done.queue_wait_ms > 100 and done.output_tokens == 12
