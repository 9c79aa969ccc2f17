"""Drill: SIGTERM one of two judge replicas (microservices shape) under a steady load of judge
requests through the ingress. No request may fail.

The replica reports NOT_SERVING for LLMMESH_DRAIN_DELAY_S (2 s) while it keeps serving, so Envoy's
1 s health checks take it out of rotation; then it stops accepting and lets its in-flight requests
finish before it exits. New requests go to the other replica all along.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time

import grpc
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from llmmesh.judge.v1 import judge_service_pb2 as judge_pb2
from llmmesh.judge.v1 import judge_service_pb2_grpc as judge_grpc
from llmmesh.topology.description import Shape
from tests.chaos.drills import child, envoy_health_flags, eventually, log_entries, put_fault, put_scripts, sim_url
from tests.support.mesh import running_mesh

# One process per service: like every microservices test, kept apart from the others.
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.xdist_group("microservices_ports"),
              pytest.mark.timeout(180)]

WORKERS = 6
BEFORE_S = 3.0  # load before the SIGTERM
AFTER_S = 6.0  # load after it: drain delay (2 s) + in-flight drain + time on the survivor alone
# A verdict of ~16 words at 25 ms each: ~0.4 s of "model time" per judge request, so there are
# always requests in flight on both replicas.
VERDICT = {"reasoning": "the answer names the right city and nothing else, which is exactly what was asked here",
           "score": 5}
EVALUATE = "/llmmesh.judge.v1.JudgeService/Evaluate"


def evaluate_handled(metrics_port: int) -> float:
    text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5, trust_env=False).text
    return sum(s.value for fam in text_string_to_metric_families(text) for s in fam.samples
               if s.name == "grpc_server_handled_total" and s.labels.get("grpc_method") == "Evaluate")


async def test_sigterm_on_a_judge_replica_under_load_loses_no_request(tmp_path) -> None:
    with running_mesh(tmp_path / "mesh", backend="sim", shape=Shape.MICROSERVICES, replicas={"judge": 2},
                      service_env={"LLMMESH_DRAIN_DELAY_S": "2", "LLMMESH_GRACE_PERIOD_S": "20"}) as mesh:
        sim = sim_url(mesh, "sim")
        await put_scripts(sim, [{"match": "Criterion:", "response": json.dumps(VERDICT)}])
        await put_fault(sim, "token_delay_ms=25")
        plan = {p.name: p for p in mesh.plan}
        victim, survivor = child(mesh, "judge-1"), child(mesh, "judge-2")

        codes: list[grpc.StatusCode] = []
        details: list[str] = []
        done_at: list[float] = []
        t_sigterm: list[float] = []
        stop = asyncio.Event()
        async with grpc.aio.insecure_channel(mesh.ingress) as channel:
            stub = judge_grpc.JudgeServiceStub(channel)
            req = judge_pb2.EvaluateRequest(question="What is the capital of France?", answer="Paris.",
                                            ground_truth="Paris", judge_type="factual")

            async def worker() -> None:
                while not stop.is_set():
                    try:
                        resp = await stub.Evaluate(req, timeout=30)
                        codes.append(grpc.StatusCode.OK if resp.score == 5 else grpc.StatusCode.UNKNOWN)
                    except grpc.aio.AioRpcError as exc:
                        codes.append(exc.code())
                        details.append(f"{exc.code().name}: {exc.details()}")
                    done_at.append(time.monotonic())

            workers = [asyncio.create_task(worker()) for _ in range(WORKERS)]
            await asyncio.sleep(BEFORE_S)
            # Both replicas are taking load, and the victim has requests in flight right now.
            assert evaluate_handled(plan["judge-1"].metrics_port) > 0
            assert evaluate_handled(plan["judge-2"].metrics_port) > 0
            survivor_before = evaluate_handled(plan["judge-2"].metrics_port)
            t_sigterm.append(time.monotonic())
            victim.proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(AFTER_S)
            # Envoy noticed: the victim's host failed its health checks (or is gone from the pool).
            flags = envoy_health_flags(mesh, "svc_judge")
            stop.set()
            await asyncio.wait_for(asyncio.gather(*workers), 40)
        await eventually(lambda: victim.proc.poll() is not None, 30, what="the victim to exit")
        after = sum(1 for t in done_at if t > t_sigterm[0])
        survivor_took = evaluate_handled(plan["judge-2"].metrics_port) - survivor_before
        print(f"\ndrain drill: {len(codes)} judge requests, {after} finished after the SIGTERM, "
              f"failures {len(details)}; judge-2 handled {survivor_took:.0f} after it; Envoy flags {flags}")

        assert details == [], details
        assert all(c is grpc.StatusCode.OK for c in codes)
        assert after >= WORKERS, "the load did not go on after the SIGTERM"
        assert victim.proc.returncode == 0, victim.log_tail()
        assert survivor.alive()
        assert survivor_took > 0
        assert any("failed_active_hc" in f for f in flags) or len(flags) == 1, flags

        # The victim's own log: what it was still running when told to stop finished with OK.
        entries = log_entries(victim.log_path)
        stopping = next(i for i, e in enumerate(entries) if e.get("msg", "").startswith("stopping"))
        drained = [e for e in entries[stopping:] if e.get("msg") == "rpc finished" and e.get("grpc_method") == EVALUATE]
        print(f"drain drill: judge-1 finished {len(drained)} Evaluate calls after SIGTERM: "
              f"{sorted({e['grpc_code'] for e in drained})}")
        assert drained, "judge-1 had nothing in flight at SIGTERM: the drill proved nothing"
        assert all(e["grpc_code"] == "OK" for e in drained), drained
        assert entries[-1].get("msg") == "stopped"
