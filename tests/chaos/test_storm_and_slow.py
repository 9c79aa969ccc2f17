"""Drill: a 503 storm on one backend and a slow other backend at the same time, under steady load.

No cascade: every request still succeeds (through the slow but working backend), with latency
bounded by that backend's own pace rather than by timeouts; the storming backend's circuit opens,
so it stops being hammered (it sees a handful of trial requests, not the load); the ingress never
ejects the inference service. After recovery the circuit goes half-open, and closes only once a
trial request has succeeded.
"""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from llmmesh.common.v1 import common_pb2
from llmmesh.inference.v1 import inference_service_pb2 as pb
from llmmesh.inference.v1 import inference_service_pb2_grpc as pb_grpc
from tests.chaos.drills import (
    Tally,
    all_backends_ready,
    envoy_counter,
    envoy_health_flags,
    eventually,
    generate,
    put_fault,
    reset_stats,
    sim_stats,
    sim_url,
    sims_mesh,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.xdist_group("chaos_storm"), pytest.mark.timeout(150)]

BREAKER_OPEN_S = 1.0
SERVICE_ENV = {"LLMMESH_INVENTORY_REFRESH_S": "0.5", "LLMMESH_IDLE_TIMEOUT_S": "5", "LLMMESH_BACKOFF_S": "0.02",
               "LLMMESH_BREAKER_FAILURES": "3", "LLMMESH_BREAKER_OPEN_S": str(BREAKER_OPEN_S)}
WORKERS = 8
LOAD_S = 8.0
TOKENS = 8
# The slow backend: 300 ms before answering, then 30 ms per token (~0.55 s per request).
SLOW = "delay_ms=300,token_delay_ms=30"
SLOW_REQUEST_S = 0.3 + TOKENS * 0.03


def request(i: int) -> pb.GenerateRequest:
    return pb.GenerateRequest(prompt=f"storm {i}", options=common_pb2.GenerationOptions(max_tokens=TOKENS))


async def backends(stub: pb_grpc.InferenceServiceStub) -> dict[str, pb.BackendInfo]:
    return {b.name: b for b in (await stub.ListBackends(pb.ListBackendsRequest(), timeout=5)).backends}


async def test_503_storm_plus_slow_backend_does_not_cascade_and_the_breaker_recovers(tmp_path) -> None:
    with sims_mesh(tmp_path / "mesh", service_env=SERVICE_ENV) as mesh:
        sim1, sim2 = sim_url(mesh, "sim1"), sim_url(mesh, "sim2")
        async with grpc.aio.insecure_channel(mesh.ingress) as channel:
            stub = pb_grpc.InferenceServiceStub(channel)

            await all_backends_ready(channel)
            for url in (sim1, sim2):
                await reset_stats(url)
            ejections_before = envoy_counter(mesh, "cluster.svc_inference.outlier_detection.ejections_enforced_total")

            # ---- the storm: sim1 answers 503 "server busy" to everything, sim2 is slow ----
            await put_fault(sim1, "busy")
            await put_fault(sim2, SLOW)
            tally = Tally()
            states: list[int] = []
            stop = time.monotonic() + LOAD_S

            async def worker(w: int) -> None:
                i = 0
                while time.monotonic() < stop:
                    tally.outcomes.append(await generate(stub, request(w * 1000 + i), 30))
                    i += 1

            async def monitor() -> None:
                while time.monotonic() < stop:
                    states.append((await backends(stub))["sim1"].circuit)
                    await asyncio.sleep(0.1)

            await asyncio.gather(monitor(), *(worker(w) for w in range(WORKERS)))
            storm1, storm2 = await sim_stats(sim1), await sim_stats(sim2)
            print(f"\nstorm drill: {tally.summary()}")
            print(f"storm drill: sim1 (503) saw {storm1['started']} requests, sim2 (slow) served "
                  f"{storm2['completed']}; sim1 circuit states seen: "
                  f"{sorted({pb.CircuitState.Name(s) for s in states})}")

            # Every request succeeded through the slow backend.
            assert tally.kinds() == {"done": len(tally.outcomes)}, tally.summary()
            assert all(d.backend == "sim2" and d.output_tokens == TOKENS for d in tally.done)
            # Throughput held: the workers were never stuck behind timeouts (a stuck worker would
            # manage about one request per idle timeout).
            assert len(tally.outcomes) >= WORKERS * LOAD_S / (SLOW_REQUEST_S * 4), tally.summary()
            # Latency bounded by the slow backend's pace plus failover backoff, far below the idle
            # timeout (5 s) a cascade of stuck requests would show: a generous bound for a busy CI.
            assert max(o.seconds for o in tally.outcomes) < SLOW_REQUEST_S * 8, tally.summary()
            # The breaker shields the storming backend: it opened, and sim1 saw only the requests
            # that opened it plus roughly one half-open trial per open period, not the load.
            assert pb.CIRCUIT_STATE_OPEN in states
            trials = LOAD_S / BREAKER_OPEN_S + 1
            assert storm1["started"] <= 3 + trials + WORKERS, (storm1["started"], len(tally.outcomes))
            assert storm1["started"] < len(tally.outcomes) / 2
            # No cascade into the ingress: the inference service was never ejected or marked down.
            assert envoy_health_flags(mesh, "svc_inference") == ["healthy"]
            assert envoy_counter(mesh, "cluster.svc_inference.outlier_detection.ejections_enforced_total") \
                == ejections_before
            # Nothing piled up on the slow backend: never more generations at once than workers, and
            # none left once the load stopped. Slowness alone is no failure: its circuit stayed closed.
            assert storm2["peak_in_flight_generations"] <= WORKERS, storm2["peak_in_flight_generations"]

            async def drained() -> bool:
                return (await sim_stats(sim2))["in_flight_generations"] == 0 and \
                    (await backends(stub))["sim2"].in_flight == 0

            await eventually(drained, 10, what="sim2 to drain")
            assert (await backends(stub))["sim2"].circuit == pb.CIRCUIT_STATE_CLOSED

            # ---- recovery: half-open first, closed only after a successful trial ----
            await put_fault(sim1, "")
            await put_fault(sim2, "")
            await asyncio.sleep(BREAKER_OPEN_S * 1.5)
            await eventually(lambda: envoy_health_flags(mesh, "backend_sim1") == ["healthy"], 20, 0.2,
                             "Envoy to readmit sim1")
            # No traffic yet: the cool-down is over, but nothing has proved sim1 healthy.
            assert (await backends(stub))["sim1"].circuit == pb.CIRCUIT_STATE_HALF_OPEN

            async def sim1_serves() -> bool:
                outs = await asyncio.gather(*(generate(stub, request(i), 30) for i in range(4)))
                return any(o.done is not None and o.done.backend == "sim1" for o in outs)

            await eventually(sim1_serves, 20, 0.2, "sim1 to serve again")
            assert (await backends(stub))["sim1"].circuit == pb.CIRCUIT_STATE_CLOSED
