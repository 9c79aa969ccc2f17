"""The microservices shape as local processes: one process per service, two judge replicas, the
real Envoy in front (the launcher's config, rendered from the same topology description as the
compose and Kubernetes ones). SIGKILL one judge replica and calls through the ingress keep
succeeding: Envoy retries the connect failure on the other replica at once, then its health
checks eject the dead one, exactly what `--scale judge=N` and the HPA rely on.
"""

from __future__ import annotations

import json
import re
import signal

import grpc
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from llmmesh.judge.v1 import judge_service_pb2 as judge_pb2
from llmmesh.judge.v1 import judge_service_pb2_grpc as judge_grpc
from llmmesh.topology.description import SERVICES, Shape
from tests.deploy.support import DEPLOY
from tests.support.e2e import wait_until
from tests.support.mesh import running_mesh

# One process per service: kept apart from every other test that runs the microservices shape.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("microservices_ports")]


def list_criteria(stub: judge_grpc.JudgeServiceStub) -> grpc.StatusCode:
    try:
        stub.ListCriteria(judge_pb2.ListCriteriaRequest(), timeout=15)
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


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
