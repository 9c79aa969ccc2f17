"""Helpers shared by the benchmarks (inference, patterns, REST vs gRPC, overload, quality): a mesh on
free ports, simulator control, percentiles, per-process CPU time, and the machine's description."""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from llmmesh.launcher.up import Mesh, UpOptions, start_mesh

ROOT = Path(__file__).resolve().parents[2]
LOCAL = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOCAL, 0))
        return s.getsockname()[1]


@contextmanager
def bench_mesh(service_env: dict[str, str] | None = None, sim_count: int = 1, backend: str = "sim",
               keep_logs: bool = False) -> Iterator[Mesh]:
    """The monolith mesh as ./scripts/up --backend BACKEND runs it (sim by default; "" picks as `up`
    does: LLMMESH_BACKENDS, else a local Ollama, else llama.cpp), on free ports; stopped on the way out.
    Its state directory goes with it, unless something failed or `keep_logs`: then its logs are kept
    and named."""
    state = Path(tempfile.mkdtemp(prefix="llmmesh-bench-"))
    opts = UpOptions(backend=backend, ingress_port=free_port(), admin_port=free_port(), egress_port=free_port(),
                     grpc_port=free_port(), metrics_port=free_port(), backend_port=free_port(), state_dir=state,
                     port_allocator=free_port, sim_count=sim_count,
                     service_env={"LLMMESH_LOG_LEVEL": "WARNING", **(service_env or {})})
    print(f"starting the mesh (state and logs in {state})", file=sys.stderr)
    ok = False
    mesh: Mesh | None = None
    try:
        mesh = start_mesh(opts)  # on failure it stops whatever it started
        yield mesh
        ok = True
    finally:
        if mesh is not None:
            mesh.stop()
        if ok and not keep_logs:
            shutil.rmtree(state, ignore_errors=True)
        else:
            print(f"bench: logs kept in {state / 'logs'}", file=sys.stderr)


def sim_url(mesh: Mesh) -> str:
    return mesh.choice.specs[0].split("=", 1)[1]


def configure_sim(mesh: Mesh, fault: str, rules: list[dict] | None = None) -> None:
    with httpx.Client(base_url=sim_url(mesh), timeout=10, trust_env=False) as c:
        c.put("/_sim/faults", json={"spec": fault}).raise_for_status()
        c.put("/_sim/scripts", json={"rules": rules or []}).raise_for_status()


def percentile(values: list[float], q: float) -> float:
    """Linearly interpolated percentile, q in [0, 100]; NaN for no values."""
    if not values:
        return math.nan
    s = sorted(values)
    pos = (len(s) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (all its threads) from /proc/<pid>/stat."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return 0.0
    rest = data[data.rindex(")") + 2:].split()
    return (int(rest[11]) + int(rest[12])) / CLK_TCK  # fields 14 and 15 of proc(5)


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all CPUs), from the first line of /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    guest = sum(values[8:10])  # already counted in user/nice
    return (sum(values) - idle - guest) / CLK_TCK


@dataclass
class CpuMeter:
    """CPU seconds of named processes (and of the whole machine) between start() and stop()."""

    pids: dict[str, int]
    used: dict[str, float] = field(default_factory=dict)
    wall_s: float = 0.0

    def _snap(self) -> dict[str, float]:
        snap = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        snap["_machine"] = machine_busy_seconds()
        return snap

    def start(self) -> None:
        self._t0, self._s0 = time.perf_counter(), self._snap()

    def stop(self) -> None:
        s1 = self._snap()
        self.wall_s = time.perf_counter() - self._t0
        self.used = {k: s1[k] - self._s0[k] for k in s1}

    def cores(self, name: str) -> float:
        return self.used.get(name, 0.0) / self.wall_s if self.wall_s else 0.0

    def others(self) -> float:
        ours = sum(v for k, v in self.used.items() if not k.startswith("_"))
        return max(0.0, self.used.get("_machine", 0.0) - ours) / self.wall_s if self.wall_s else 0.0


def mesh_pids(mesh: Mesh) -> dict[str, int]:
    """client (this process), envoy, the monolith (`llmmesh`), the gateway and the simulator(s)."""
    pids = {"client": os.getpid()}
    for c in mesh.supervisor.children:
        pids["simulator" if c.name.startswith("simulator") else c.name] = c.proc.pid
    return pids


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine() -> dict[str, str]:
    before = machine_busy_seconds()
    time.sleep(1.0)
    busy = machine_busy_seconds() - before
    return {"date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "nproc": str(len(os.sched_getaffinity(0))), "cpu": cpu_model(), "load_before": loadavg(),
            "busy_before": f"{busy:.2f}", "python": platform.python_version()}


def git_describe() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return f"{rev}{' + uncommitted changes' if dirty else ''}"
