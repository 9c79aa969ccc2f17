"""Shared pieces of the chaos drills: simulator control, stream outcomes with a hard deadline,
process memory from /proc, and the mesh's children by name.

Every wait here is bounded: a hung stream becomes an outcome ("hung"), never a hung test.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx

from llmmesh.common.backends import parse_backend
from llmmesh.inference.v1 import inference_service_pb2 as pb
from llmmesh.inference.v1 import inference_service_pb2_grpc as pb_grpc
from llmmesh.launcher.procs import Child, LaunchError
from llmmesh.launcher.up import Mesh
from tests.support.mesh import start_on_free_ports

# ---- meshes ---------------------------------------------------------------------------------


def free_port_block(n: int, host: str = "127.0.0.1") -> int:
    """A port P such that P … P+n-1 were all free a moment ago (the launcher puts simulator i on
    backend_port + i; a free backend_port alone says nothing about the ports after it, which busy
    drills with hundreds of client connections make likely to be taken)."""
    for _ in range(100):
        socks: list[socket.socket] = []
        try:
            for i in range(n):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.bind((host, socks[0].getsockname()[1] + i if i else 0))
            return socks[0].getsockname()[1]
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no block of {n} free ports found")


@contextmanager
def sims_mesh(state_dir: Path, sim_count: int = 2, attempts: int = 4, **overrides: Any) -> Iterator[Mesh]:
    """running_mesh with `sim_count` simulators on a block of ports checked to be free, retried on
    a fresh block when a bind still lost a race."""
    for attempt in range(1, attempts + 1):
        try:
            mesh = start_on_free_ports(state_dir, "sim", attempts=1, sim_count=sim_count,
                                       backend_port=free_port_block(sim_count), **overrides)
            break
        except LaunchError as exc:
            text = str(exc).lower()
            if attempt == attempts or not ("bind" in text or "address already in use" in text):
                raise
    try:
        yield mesh
    finally:
        mesh.stop()

# ---- simulators -----------------------------------------------------------------------------


def sim_url(mesh: Mesh, name: str) -> str:
    """URL of the simulator backend `name` (sim1, sim2, … with sim_count > 1; `sim` with one)."""
    return next(parse_backend(s).url for s in mesh.choice.specs if s.startswith(f"{name}="))


async def put_fault(url: str, spec: str) -> None:
    async with httpx.AsyncClient(trust_env=False) as http:
        (await http.put(f"{url}/_sim/faults", json={"spec": spec}, timeout=10)).raise_for_status()


async def put_scripts(url: str, rules: list[dict[str, Any]]) -> None:
    async with httpx.AsyncClient(trust_env=False) as http:
        (await http.put(f"{url}/_sim/scripts", json={"rules": rules}, timeout=30)).raise_for_status()


async def sim_stats(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(trust_env=False) as http:
        return (await http.get(f"{url}/_sim/stats", timeout=10)).json()


async def reset_stats(url: str) -> None:
    async with httpx.AsyncClient(trust_env=False) as http:
        (await http.post(f"{url}/_sim/stats/reset", timeout=10)).raise_for_status()


# ---- processes ------------------------------------------------------------------------------


def child(mesh: Mesh, name: str) -> Child:
    return next(c for c in mesh.supervisor.children if c.name == name)


def rss_mb(pid: int) -> float:
    """Resident set size of one process in MiB (VmRSS from /proc/<pid>/status); 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def log_entries(path: Path) -> list[dict[str, Any]]:
    """The JSON lines of a service log (anything else, e.g. a traceback, is skipped)."""
    out = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


def envoy_health_flags(mesh: Mesh, cluster: str) -> list[str]:
    """health_flags of every host of an Envoy cluster (`healthy`, `/failed_active_hc`, …)."""
    text = httpx.get(f"http://127.0.0.1:{mesh.options.admin_port}/clusters", timeout=5, trust_env=False).text
    return [ln.rsplit("::", 1)[1] for ln in text.splitlines()
            if ln.startswith(f"{cluster}::") and "::health_flags::" in ln]


def envoy_counter(mesh: Mesh, name: str) -> int:
    url = f"http://127.0.0.1:{mesh.options.admin_port}/stats?format=json&filter=^{name}$"
    stats = httpx.get(url, timeout=5, trust_env=False).json()["stats"]
    return sum(int(s.get("value", 0)) for s in stats if s.get("name") == name)


# ---- streams --------------------------------------------------------------------------------


@dataclass
class Outcome:
    """How one Generate stream ended.

    kind: `done` (terminal done event), `error_event` (terminal error event), `status` (a non-OK
    gRPC status with no event), `silent` (status OK but no terminal event: a bug), `hung` (still
    open at its deadline: a bug).
    """

    kind: str
    text: str = ""  # the deltas joined: how many messages carried it is the relay's choice (it coalesces)
    done: pb.GenerationDone | None = None
    code: grpc.StatusCode | None = None
    message: str = ""
    seconds: float = 0.0

    @property
    def tokens(self) -> int:
        """Tokens received: the simulator's tokens are words, one each."""
        return len(self.text.split())

    @property
    def explicit(self) -> bool:
        return self.kind in ("done", "error_event", "status")


async def generate(stub: pb_grpc.InferenceServiceStub, request: pb.GenerateRequest, deadline_s: float,
                   started: asyncio.Event | None = None) -> Outcome:
    """Run one Generate stream to its end or to `deadline_s`, whichever comes first.

    The gRPC deadline is set well past `deadline_s`, so a stream still open then is reported as
    hung by us rather than ended by its own deadline."""
    t0 = time.perf_counter()
    call = stub.Generate(request, timeout=deadline_s + 60)
    out = Outcome("silent")

    async def consume() -> None:
        async for ev in call:
            kind = ev.WhichOneof("event")
            if kind == "delta":
                out.text += ev.delta.text
                if started is not None:
                    started.set()
            elif kind == "done":
                out.kind, out.done = "done", ev.done
            elif kind == "error":
                out.kind, out.message = "error_event", ev.error.message
                out.code = next((c for c in grpc.StatusCode if c.value[0] == ev.error.code), None)

    try:
        await asyncio.wait_for(consume(), deadline_s)
    except TimeoutError:
        call.cancel()
        out.kind = "hung"
    except grpc.aio.AioRpcError as exc:
        if out.kind == "silent":  # a status after an error event keeps the event's classification
            out.kind, out.code, out.message = "status", exc.code(), exc.details() or ""
    finally:
        if started is not None:
            started.set()  # a stream that failed before its first token must not block the drill
    out.seconds = time.perf_counter() - t0
    return out


@dataclass
class Tally:
    outcomes: list[Outcome] = field(default_factory=list)

    def kinds(self) -> Counter[str]:
        return Counter(o.kind for o in self.outcomes)

    def codes(self) -> Counter[str]:
        return Counter(o.code.name for o in self.outcomes if o.code is not None)

    @property
    def done(self) -> list[pb.GenerationDone]:
        return [o.done for o in self.outcomes if o.done is not None]

    def failed_over(self) -> list[pb.GenerationDone]:
        return [d for d in self.done if d.failed_over]

    def summary(self) -> str:
        lat = sorted(o.seconds for o in self.outcomes)
        p = (lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]) if lat else (lambda q: 0.0)
        return (f"{len(self.outcomes)} streams: {dict(self.kinds())}, failed over {len(self.failed_over())}, "
                f"error codes {dict(self.codes())}, latency p50 {p(0.5):.2f}s p95 {p(0.95):.2f}s max "
                f"{lat[-1] if lat else 0:.2f}s")


async def all_backends_ready(channel: grpc.aio.Channel, timeout_s: float = 20) -> None:
    """Wait until the inference service sees every backend healthy with a closed circuit and the
    default model loaded. Right after start-up its first inventory probe may have raced Envoy's
    first health check, and a cold backend counts as busier: either would skew a drill's load."""
    stub = pb_grpc.InferenceServiceStub(channel)

    async def ready() -> bool:
        # Some traffic loads the model on every backend (and lets a half-open circuit close).
        await asyncio.gather(*(generate(stub, pb.GenerateRequest(prompt=f"warm {i}", options={"max_tokens": 2}), 30)
                               for i in range(4)))
        listed = (await stub.ListBackends(pb.ListBackendsRequest(), timeout=5)).backends
        return all(b.health == pb.BACKEND_HEALTH_HEALTHY and b.circuit == pb.CIRCUIT_STATE_CLOSED
                   and b.loaded_models for b in listed)

    await eventually(ready, timeout_s, 0.2, "every backend healthy, closed and loaded")


async def eventually(predicate, timeout_s: float, interval_s: float = 0.1, what: str = "condition") -> Any:
    """Poll an (async) predicate until it returns something truthy; fail after timeout_s."""
    deadline = time.monotonic() + timeout_s
    value = None
    while time.monotonic() < deadline:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        await asyncio.sleep(interval_s)
    raise AssertionError(f"{what} not met within {timeout_s}s (last value {value!r})")
