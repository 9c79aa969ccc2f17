"""Chaos through the real Envoy: ingress → inference → egress → two simulator processes.

A backend killed with streams in flight, its ejection by Envoy's health checks and its return.
(A 503 storm tripping and resetting the breaker is the drill in test_storm_and_slow.py; failover
in the engine and through one service is tested in tests/inference/failover.)
"""

from __future__ import annotations

import asyncio
import signal

import grpc
import httpx
import pytest

from llmmesh.common.backends import parse_backend
from llmmesh.inference.v1 import inference_service_pb2 as pb
from llmmesh.inference.v1 import inference_service_pb2_grpc as pb_grpc
from llmmesh.launcher.embedded import start_simulator_process
from tests.support.mesh import running_mesh
from tests.support.sims import eventually

pytestmark = pytest.mark.xdist_group("chaos_egress")

SERVICE_ENV = {"LLMMESH_INVENTORY_REFRESH_S": "0.5", "LLMMESH_IDLE_TIMEOUT_S": "2", "LLMMESH_BREAKER_OPEN_S": "1",
               "LLMMESH_BREAKER_FAILURES": "3", "LLMMESH_BACKOFF_S": "0.02"}


def sim_url(mesh, name: str) -> str:
    return next(parse_backend(s).url for s in mesh.choice.specs if s.startswith(f"{name}="))


async def put_fault(url: str, spec: str) -> None:
    async with httpx.AsyncClient() as http:
        (await http.put(f"{url}/_sim/faults", json={"spec": spec})).raise_for_status()


def health_flags(mesh, cluster: str) -> str:
    text = httpx.get(f"http://127.0.0.1:{mesh.options.admin_port}/clusters", timeout=2).text
    return next((ln.rsplit("::", 1)[1] for ln in text.splitlines() if ln.startswith(f"{cluster}::")
                 and "::health_flags::" in ln), "")


async def run_stream(stub: pb_grpc.InferenceServiceStub, started: asyncio.Event, i: int) -> pb.GenerateResponse:
    last = None
    # max_tokens bounds the whole generation, continuation included.
    async for ev in stub.Generate(pb.GenerateRequest(prompt=f"story {i}", options={"max_tokens": 32}), timeout=60):
        started.set()
        last = ev
        if ev.WhichOneof("event") in ("done", "error"):
            return ev
    return last


@pytest.fixture(scope="module")
def mesh(tmp_path_factory):
    with running_mesh(tmp_path_factory.mktemp("chaos"), backend="sim", sim_count=2, service_env=SERVICE_ENV) as m:
        yield m


async def test_killed_backend_streams_finish_elsewhere_then_it_is_ejected_and_readmitted(mesh) -> None:
    for name in ("sim1", "sim2"):
        await put_fault(sim_url(mesh, name), "token_delay_ms=25")
    async with grpc.aio.insecure_channel(mesh.ingress) as channel:
        stub = pb_grpc.InferenceServiceStub(channel)
        flags = [asyncio.Event() for _ in range(30)]
        tasks = [asyncio.create_task(run_stream(stub, flags[i], i)) for i in range(30)]
        await asyncio.wait_for(asyncio.gather(*(f.wait() for f in flags)), 30)
        victim = next(c for c in mesh.supervisor.children if c.name == "simulator-sim2")
        victim.proc.send_signal(signal.SIGKILL)
        # Bounded: a hung stream fails the test here instead of hanging it.
        results = await asyncio.wait_for(asyncio.gather(*tasks), 60)

    kinds = [r.WhichOneof("event") for r in results]
    assert set(kinds) <= {"done", "error"}, kinds  # every stream ended explicitly
    done = [r.done for r in results if r.WhichOneof("event") == "done"]
    assert len(done) == 30, [r.error.message for r in results if r.WhichOneof("event") == "error"]
    moved = [d for d in done if d.failed_over]
    assert moved and all(list(d.backends) == ["sim2", "sim1"] for d in moved)
    assert all(d.output_tokens == 32 for d in done)

    # Envoy's active health check ejects the dead backend…
    await eventually(lambda: "failed_active_hc" in health_flags(mesh, "backend_sim2"), timeout_s=15)
    # …and takes it back once it answers again.
    start_simulator_process(mesh.supervisor, parse_backend(next(s for s in mesh.choice.specs if s.startswith("sim2"))))
    await eventually(lambda: health_flags(mesh, "backend_sim2") == "healthy", timeout_s=15)
    async with grpc.aio.insecure_channel(mesh.ingress) as channel:
        stub = pb_grpc.InferenceServiceStub(channel)

        async def sim2_takes_load() -> bool:
            # Under concurrent load the cold backend gets its share (the warm one is preferred only
            # while it is not much busier).
            lasts = await asyncio.gather(*(_last(stub.Generate(pb.GenerateRequest(prompt=f"again {i}"), timeout=30))
                                           for i in range(10)))
            return any(r.done.backend == "sim2" for r in lasts)

        await eventually(sim2_takes_load, timeout_s=15, interval_s=0.1)


async def _last(call) -> pb.GenerateResponse:
    last = None
    async for ev in call:
        last = ev
    return last
