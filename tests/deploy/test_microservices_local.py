"""The microservices shape as local processes: one process per service, two judge replicas, the
real Envoy in front (the launcher's config, rendered from the same topology description as the
compose and Kubernetes ones). SIGKILL one judge replica and calls through the ingress keep
succeeding: Envoy retries the connect failure on the other replica at once, then its health
checks eject the dead one, exactly what `--scale judge=N` and the HPA rely on. Under the
launcher's supervision the killed replica comes back on its port and takes load again.

What a kill may not lose, and what it may: a request that never reached the dead replica's
servicer (connection refused, or reset before Envoy sent it) is retried on the other one, whatever
the method; a request the replica had in flight is retried only if its method has no side effects
(ListCriteria here: `idempotent_methods` in the topology). A pattern run the replica had started
(an Evaluate mid-way) is lost with it and answered UNAVAILABLE: replaying it would repeat its model
calls, and only the caller knows whether that is wanted. So the load kept in flight around each
kill is ListCriteria, and the Evaluate calls are the ones made right after it.
"""

from __future__ import annotations

import collections
import json
import re
import signal
import threading
import time
from pathlib import Path

import grpc
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from llmmesh.judge.v1 import judge_service_pb2 as judge_pb2
from llmmesh.judge.v1 import judge_service_pb2_grpc as judge_grpc
from llmmesh.topology.description import SERVICES, Shape
from tests.deploy.support import DEPLOY
from tests.support.e2e import wait_until
from tests.support.mesh import running_mesh, supervising

# One process per service: kept apart from every other test that runs the microservices shape.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("microservices_ports")]


def list_criteria(stub: judge_grpc.JudgeServiceStub) -> grpc.StatusCode:
    try:
        stub.ListCriteria(judge_pb2.ListCriteriaRequest(), timeout=15)
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def evaluate(stub: judge_grpc.JudgeServiceStub) -> grpc.StatusCode:
    try:
        stub.Evaluate(judge_pb2.EvaluateRequest(question="What is 2+2?", answer="4"), timeout=30)
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


class Load:
    """Callers that keep ListCriteria requests in flight, each recording every status it gets."""

    def __init__(self, stub: judge_grpc.JudgeServiceStub, callers: int = 4) -> None:
        self.codes: list[grpc.StatusCode] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._call, args=(stub,), daemon=True) for _ in range(callers)]

    def _call(self, stub: judge_grpc.JudgeServiceStub) -> None:
        while not self._stop.is_set():
            self.codes.append(list_criteria(stub))

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(30)


def handled(metrics_port: int) -> float:
    """ListCriteria calls this process completed (any code), from its own /metrics."""
    text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    return sum(sample.value for family in text_string_to_metric_families(text)
               for sample in family.samples
               if sample.name == "grpc_server_handled_total" and sample.labels.get("grpc_method") == "ListCriteria")


def judge_hosts(admin_port: int) -> dict[str, str]:
    text = httpx.get(f"http://127.0.0.1:{admin_port}/clusters", timeout=5).text
    out = {}
    for line in text.splitlines():
        if line.startswith("svc_judge::") and "::health_flags::" in line:
            _, host, _, flags = line.split("::", 3)
            out[host] = flags
    return out


def times_back(launcher_log: Path, name: str) -> int:
    """How often the supervisor has reported `name` restarted and serving again."""
    text = launcher_log.read_text() if launcher_log.exists() else ""
    return len(re.findall(rf"llmmesh: {re.escape(name)} is back \(pid \d+, restart \d+\)", text))


def envoy_stat(admin_port: int, name: str) -> int:
    stats = httpx.get(f"http://127.0.0.1:{admin_port}/stats?format=json&filter=^{name}$", timeout=5).json()
    return sum(int(s.get("value", 0)) for s in stats["stats"] if s.get("name") == name)


def test_killing_one_judge_replica_keeps_requests_succeeding(tmp_path) -> None:
    # running_mesh gives every process a free port (the launcher's port_allocator) instead of the
    # topology's fixed 50051-50057 (+100 per replica); the group keeps it apart all the same.
    with running_mesh(tmp_path / "mesh", backend="sim", shape=Shape.MICROSERVICES, replicas={"judge": 2},
                      service_env={"LLMMESH_DRAIN_DELAY_S": "0.2"}) as mesh:
        admin = mesh.options.admin_port
        plan = {p.name: p for p in mesh.plan}
        children = {c.name: c for c in mesh.supervisor.children}
        assert {"judge-1", "judge-2"} <= set(children) and {"judge-1", "judge-2"} <= set(plan)
        assert {s.name for s in SERVICES} - {"judge"} <= set(children)
        assert len(judge_hosts(admin)) == 2

        with grpc.insecure_channel(mesh.ingress) as channel:
            stub = judge_grpc.JudgeServiceStub(channel)
            codes: list[grpc.StatusCode] = []

            def both_replicas_served() -> bool:
                codes.extend(list_criteria(stub) for _ in range(5))
                return all(handled(plan[name].metrics_port) > 0 for name in ("judge-1", "judge-2"))

            # Envoy spreads the calls over both replicas. (Its workers learn of a host's health up
            # to common_lb_config.update_merge_window, 1 s by default, after /clusters shows it, so
            # the first calls may all go to one replica.)
            wait_until(both_replicas_served, 20, "calls reaching both judge replicas", interval_s=0.1)
            # Whatever the judge answers (OK once implemented), a live replica answered it.
            assert grpc.StatusCode.UNAVAILABLE not in codes, codes
            assert grpc.StatusCode.DEADLINE_EXCEEDED not in codes, codes
            before = {name: handled(plan[name].metrics_port) for name in ("judge-1", "judge-2")}
            assert sum(before.values()) == len(codes), (before, len(codes))

            victim_name, survivor = "judge-1", "judge-2"
            victim = children[victim_name]
            victim.proc.send_signal(signal.SIGKILL)
            victim.proc.wait(10)
            retries_before = envoy_stat(admin, "cluster.svc_judge.upstream_rq_retry")

            # Straight away, before any health check noticed: Envoy still picks the dead replica,
            # gets a connect failure and retries on the live one (retry_on connect-failure,
            # previous_hosts), so no caller sees it.
            codes = [list_criteria(stub) for _ in range(30)]
            assert grpc.StatusCode.UNAVAILABLE not in codes, codes
            assert grpc.StatusCode.DEADLINE_EXCEEDED not in codes, codes
            assert envoy_stat(admin, "cluster.svc_judge.upstream_rq_retry") > retries_before

            # Then the active gRPC health checks take it out of the cluster.
            dead = f"127.0.0.1:{plan[victim_name].port}"
            live = f"127.0.0.1:{plan[survivor].port}"

            def ejected() -> bool:
                hosts = judge_hosts(admin)
                return "failed_active_hc" in hosts.get(dead, "") and hosts.get(live) == "healthy"

            wait_until(ejected, 15, "Envoy marking the killed judge unhealthy", interval_s=0.2)
            codes = [list_criteria(stub) for _ in range(10)]
            assert grpc.StatusCode.UNAVAILABLE not in codes, codes
            after = handled(plan[survivor].metrics_port)
            assert after - before[survivor] >= 40, (before, after)

            # Now as `./scripts/up` runs it, supervised: the dead replica comes back on its port.
            with supervising(mesh) as lost:
                launcher_log = mesh.options.state_dir / "logs" / "launcher.log"
                wait_until(lambda: times_back(launcher_log, victim_name) == 1, 30, "judge-1 restarted", interval_s=0.2)
                assert "restarting judge-1 (exited with -9), attempt 1 in 0.5 s" in launcher_log.read_text()
                wait_until(lambda: set(judge_hosts(admin).values()) == {"healthy"}, 15, "both judges healthy")

                # Kill each replica in turn with requests in flight: none fails, each comes back.
                retries_before = envoy_stat(admin, "cluster.svc_judge.upstream_rq_retry")
                for name in ["judge-2", "judge-1", "judge-2", "judge-1"]:
                    with Load(stub) as load:
                        time.sleep(0.5)
                        seen_back = times_back(launcher_log, name)
                        victim = next(c for c in mesh.supervisor.children if c.name == name)
                        victim.proc.send_signal(signal.SIGKILL)
                        victim.proc.wait(10)
                        # Pattern runs sent now, before any health check noticed: never sent to
                        # the dead replica, or refused by it, so retried on the live one.
                        runs = [evaluate(stub) for _ in range(10)]
                        wait_until(lambda name=name, seen=seen_back: times_back(launcher_log, name) > seen, 30,
                                   f"{name} back", interval_s=0.2)
                        wait_until(lambda: set(judge_hosts(admin).values()) == {"healthy"}, 15, "both healthy")
                        served_before = handled(plan[name].metrics_port)  # the new process's own count
                        time.sleep(1.0)
                    assert set(runs) == {grpc.StatusCode.OK}, runs
                    assert load.codes and set(load.codes) == {grpc.StatusCode.OK}, collections.Counter(load.codes)
                    # Load reached the restarted replica.
                    assert handled(plan[name].metrics_port) > served_before, name
                assert envoy_stat(admin, "cluster.svc_judge.upstream_rq_retry") > retries_before
                assert not lost

        # The Envoy series the Grafana dashboard queries exist under these names.
        stats = httpx.get(f"http://127.0.0.1:{admin}/stats/prometheus", timeout=5).text
        exported = {f.name for f in text_string_to_metric_families(stats)} | {
            s.name for f in text_string_to_metric_families(stats) for s in f.samples}
        dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "llmmesh.json").read_text())
        exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p.get("targets", []))
        # Metric names only: drop label matchers and `by (...)` label lists first.
        names_only = re.sub(r"\{[^}]*\}|\bby \([^)]*\)", " ", exprs)
        used = set(re.findall(r"\b(envoy_[a-z_]+)", names_only))
        assert used and used <= exported, used - exported
