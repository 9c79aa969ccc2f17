"""Drill: one of two backends hangs mid-stream (sends a few tokens, then nothing, connection open).

With LLMMESH_IDLE_TIMEOUT_S=1 the inference service gives up on the silent backend after a second
and continues each stream on the other one from the tokens already delivered; the hung requests
are closed at the backend (the simulator counts them as cancelled, none is left hanging there),
and the repeated failures open the hung backend's circuit.
"""

from __future__ import annotations

import asyncio

import grpc
import pytest

from llmmesh.common.v1 import common_pb2
from llmmesh.inference.v1 import inference_service_pb2 as pb
from llmmesh.inference.v1 import inference_service_pb2_grpc as pb_grpc
from tests.chaos.drills import (
    Tally,
    all_backends_ready,
    eventually,
    generate,
    put_fault,
    reset_stats,
    sim_stats,
    sim_url,
    sims_mesh,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.xdist_group("chaos_hang"), pytest.mark.timeout(150)]

IDLE_TIMEOUT_S = 1.0
HANG_AFTER = 5  # frames: the hang starts mid-stream, after tokens reached the client
STREAMS = 12
TOKENS = 24
SERVICE_ENV = {"LLMMESH_INVENTORY_REFRESH_S": "0.5", "LLMMESH_IDLE_TIMEOUT_S": str(IDLE_TIMEOUT_S),
               "LLMMESH_BACKOFF_S": "0.02", "LLMMESH_BREAKER_FAILURES": "3", "LLMMESH_BREAKER_OPEN_S": "30"}


async def test_idle_timeout_moves_streams_off_a_hung_backend(tmp_path) -> None:
    with sims_mesh(tmp_path / "mesh", service_env=SERVICE_ENV) as mesh:
        sim1, sim2 = sim_url(mesh, "sim1"), sim_url(mesh, "sim2")
        async with grpc.aio.insecure_channel(mesh.ingress) as channel:
            await all_backends_ready(channel)
        await put_fault(sim1, "token_delay_ms=10")
        await put_fault(sim2, f"token_delay_ms=10,hang_after={HANG_AFTER}")
        for url in (sim1, sim2):
            await reset_stats(url)
        async with grpc.aio.insecure_channel(mesh.ingress) as channel:
            stub = pb_grpc.InferenceServiceStub(channel)
            request = pb.GenerateRequest(prompt="hang drill", options=common_pb2.GenerationOptions(max_tokens=TOKENS))
            # Concurrent, so that both backends get streams before sim2's circuit opens.
            tally = Tally(list(await asyncio.gather(*(generate(stub, request, 30) for _ in range(STREAMS)))))
            backends = {b.name: b for b in (await stub.ListBackends(pb.ListBackendsRequest())).backends}
        print(f"\nhang drill: {tally.summary()}")

        assert tally.kinds() == {"done": STREAMS}, tally.summary()
        assert all(o.tokens == TOKENS and o.done.output_tokens == TOKENS for o in tally.outcomes)
        moved = tally.failed_over()
        assert moved, "no stream was sent to the hung backend"
        assert all(list(d.backends) == ["sim2", "sim1"] for d in moved)
        # A moved stream waited out one idle timeout, not the 30 s default nor its own deadline.
        slowest = max(o.seconds for o in tally.outcomes)
        assert slowest < 15, tally.summary()

        # Every request sim2 received was hung and then closed by the mesh: cancelled at the backend,
        # nothing still hanging there (the GPU would stop).
        async def sim2_settled() -> dict:
            stats = await sim_stats(sim2)
            return stats if stats["in_flight_generations"] == 0 and stats["cancelled"] == stats["started"] else {}

        stats2 = await eventually(sim2_settled, timeout_s=10, what="sim2's hung requests to be cancelled")
        print(f"hang drill: sim2 started {stats2['started']}, cancelled {stats2['cancelled']}, "
              f"completed {stats2['completed']}; circuit {pb.CircuitState.Name(backends['sim2'].circuit)}")
        assert stats2["completed"] == 0
        assert stats2["cancelled"] == len(moved)
        # Three consecutive idle timeouts opened sim2's circuit (30 s open: it stays open here).
        if len(moved) >= 3:
            assert backends["sim2"].circuit == pb.CIRCUIT_STATE_OPEN
        stats1 = await sim_stats(sim1)
        assert stats1["completed"] == STREAMS and stats1["cancelled"] == 0
