"""What the mesh itself reports, read the way an operator would: Envoy's admin `/stats` (per backend
cluster: upstream status codes, outlier ejections, health checks) and the inference service's
Prometheus `/metrics` (failovers, circuit state). A Snapshot is one reading; scenarios compare two."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

from llmmesh.launcher.up import Mesh


@dataclass(frozen=True)
class Snapshot:
    envoy: dict[str, int]
    # (metric sample name, sorted label pairs) -> value
    service: dict[tuple[str, tuple[tuple[str, str], ...]], float]

    def backend(self, backend: str, stat: str) -> int:
        """An Envoy stat of a backend's egress cluster, e.g. ("sim1", "upstream_rq_503")."""
        return self.envoy.get(f"cluster.backend_{backend}.{stat}", 0)

    def sample(self, name: str, **labels: str) -> float:
        """The sum of a service metric's samples whose labels include `labels`."""
        want = set(labels.items())
        return sum(v for (n, lab), v in self.service.items() if n == name and want <= set(lab))


def take(mesh: Mesh) -> Snapshot:
    admin = f"http://127.0.0.1:{mesh.options.admin_port}"
    stats = httpx.get(f"{admin}/stats?format=json", timeout=10, trust_env=False).json()["stats"]
    envoy = {s["name"]: int(s["value"]) for s in stats if "name" in s and isinstance(s.get("value"), int)}
    text = httpx.get(f"http://127.0.0.1:{mesh.options.metrics_port}/metrics", timeout=10, trust_env=False).text
    service = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    return Snapshot(envoy, service)


FAILOVERS = "llmmesh_inference_failovers_total"


@dataclass(frozen=True)
class Change:
    """What changed for one backend between two snapshots."""

    backend: str
    failovers: float  # attempts the inference service abandoned on it for another backend
    statuses: dict[int, int]  # upstream responses by HTTP status, as Envoy's egress counted them
    ejections: int  # outlier ejections Envoy enforced
    resets: int  # connections the backend's side closed with a request still on them

    def describe(self) -> str:
        parts = [f"{FAILOVERS}{{backend=\"{self.backend}\"}} +{self.failovers:g}"]
        parts += [f"upstream_rq_{code} +{n}" for code, n in sorted(self.statuses.items()) if n]
        if self.ejections:
            parts.append(f"outlier ejections +{self.ejections}")
        if self.resets:
            parts.append(f"upstream_cx_destroy_remote_with_active_rq +{self.resets}")
        return f"{self.backend}: " + ", ".join(parts)


STATUSES = (429, 500, 503)


def change(before: Snapshot, after: Snapshot, backend: str) -> Change:
    def delta(stat: str) -> int:
        return after.backend(backend, stat) - before.backend(backend, stat)

    return Change(
        backend,
        after.sample(FAILOVERS, backend=backend) - before.sample(FAILOVERS, backend=backend),
        {code: delta(f"upstream_rq_{code}") for code in STATUSES},
        delta("outlier_detection.ejections_enforced_total"),
        delta("upstream_cx_destroy_remote_with_active_rq"),
    )
