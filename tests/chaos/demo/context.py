"""What every scenario works with: the running mesh, the narrator, the commands a user could run
(curl and grpcurl, printed and then run as printed), the simulators' control API, and a ledger of
what the demo itself saw, which the metrics scenario holds the mesh's own counters against."""

from __future__ import annotations

import asyncio
import json
import queue
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
import httpx

from llmmesh.inference.v1 import inference_service_pb2 as pb
from llmmesh.inference.v1 import inference_service_pb2_grpc as pb_grpc
from llmmesh.launcher.embedded import SIM_DEMO_SCRIPTS
from llmmesh.launcher.up import Mesh
from llmmesh.settings import InferenceSettings
from tests.chaos.demo import metrics
from tests.chaos.demo.narration import Narrator, ScenarioFailed, expect
from tests.chaos.drills import envoy_health_flags, generate, sim_url
from tests.support.e2e import CURL, curl, grpcurl, split_http_response, sse_events

SIMS = ("sim1", "sim2")
REQUEST_TIMEOUT_S = 30.0


@dataclass
class Ledger:
    """What the demo caused and saw, per backend."""

    # Attempts abandoned for another backend, as the clients saw them in `done` events.
    failovers: Counter[str] = field(default_factory=Counter)
    # Error statuses the simulators were told to answer and did (backend, HTTP status).
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    ejections: Counter[str] = field(default_factory=Counter)
    # Requests the mesh refused as INVALID_ARGUMENT.
    invalid: int = 0


@dataclass
class Demo:
    mesh: Mesh
    say: Narrator
    settings: InferenceSettings
    channel: grpc.aio.Channel
    baseline: metrics.Snapshot | None = None
    ledger: Ledger = field(default_factory=Ledger)

    # ---- where things are -------------------------------------------------------------------

    @property
    def ingress(self) -> str:
        return f"localhost:{self.mesh.options.ingress_port}"

    def sim_address(self, name: str) -> str:
        return sim_url(self.mesh, name).replace("http://127.0.0.1", "localhost")

    def other(self, name: str) -> str:
        return next(s for s in SIMS if s != name)

    # ---- commands a user could run ----------------------------------------------------------

    def curl(self, *args: str, show: bool = True) -> subprocess.CompletedProcess[str]:
        if show:
            self.say.command(["curl", *args])
        done = curl(*args, timeout_s=REQUEST_TIMEOUT_S)
        expect(done.returncode == 0, f"curl exited with {done.returncode}: {done.stderr.strip()}")
        return done

    def grpcurl(self, *args: str) -> subprocess.CompletedProcess[str]:
        self.say.command(["grpcurl", *args])
        done = grpcurl(*args, timeout_s=REQUEST_TIMEOUT_S)
        expect(done.returncode == 0, f"grpcurl exited with {done.returncode}: {done.stderr.strip()}")
        return done

    def rest_error(self, path: str, body: str) -> tuple[int, dict[str, Any]]:
        """POST over REST, expecting an error: its HTTP status and the google.rpc.Status JSON."""
        status, _, text = split_http_response(self.curl("-s", "-i", f"{self.ingress}{path}", "-d", body).stdout)
        try:
            return status, json.loads(text)
        except json.JSONDecodeError:
            raise ScenarioFailed(f"HTTP {status} with a body that is not JSON: {text[:300]!r}") from None

    def sse(self, path: str, body: str, show: bool = True) -> list[dict[str, Any]]:
        """POST over REST and read the Server-Sent Events to the end of the stream."""
        return sse_events(self.curl("-sN", f"{self.ingress}{path}", "-d", body, show=show).stdout)

    def generate(self, prompt: str, max_tokens: int = 8, show: bool = True) -> dict[str, Any]:
        """One streamed generation over REST (SSE); it must end with `done`, which is returned."""
        body = json.dumps({"prompt": prompt, "options": {"max_tokens": max_tokens}})
        events = self.sse("/api/v1/inference/generate", body, show)
        expect(events and "done" in events[-1], f"the stream ended without a done event: {events[-1:]}")
        deltas = sum("delta" in e for e in events)
        expect(deltas == max_tokens == len(events) - 1, f"{deltas} token events for max_tokens {max_tokens}")
        done = events[-1]["done"]
        self.saw(done["backends"])
        return done

    async def burst(self, n: int, prompt: str) -> list[pb.GenerationDone]:
        """n concurrent generations over gRPC (not shown: load, not a lesson); each must end `done`."""
        stub = pb_grpc.InferenceServiceStub(self.channel)
        outcomes = await asyncio.gather(*(generate(stub, pb.GenerateRequest(
            prompt=f"{prompt} {i}", options={"max_tokens": 4}), REQUEST_TIMEOUT_S) for i in range(n)))
        for o in outcomes:
            expect(o.done is not None, f"a generation ended {o.kind} ({o.code}: {o.message})")
            self.saw(o.done.backends)
        return [o.done for o in outcomes if o.done is not None]

    def saw(self, backends: Iterable[str]) -> None:
        """Every backend of a `done` event but the last is an attempt the mesh abandoned."""
        for name in list(backends)[:-1]:
            self.ledger.failovers[name] += 1

    # ---- the simulators' control API and the mesh's own view ---------------------------------

    def set_fault(self, name: str, spec: str, show: bool = True) -> None:
        out = self.curl("-s", "-X", "PUT", f"{self.sim_address(name)}/_sim/faults", "-d",
                        json.dumps({"spec": spec}), show=show)
        expect(json.loads(out.stdout).get("spec", None) is not None, f"{name} refused the fault: {out.stdout}")

    def fault(self, name: str) -> str:
        return httpx.get(f"{sim_url(self.mesh, name)}/_sim/faults", timeout=10, trust_env=False).json()["spec"]

    def add_rules(self, rules: Sequence[dict[str, Any]]) -> None:
        """Script rules on every simulator, in front of the demo scripts the launcher gave them; they
        replace the rules an earlier scenario added (a slow client's answer weighs tens of MB)."""
        launcher_rules = json.loads(SIM_DEMO_SCRIPTS.read_text())["rules"]
        for name in SIMS:
            httpx.put(f"{sim_url(self.mesh, name)}/_sim/scripts", json={"rules": [*rules, *launcher_rules]},
                      timeout=30, trust_env=False).raise_for_status()

    def sim_stats(self, name: str) -> dict[str, Any]:
        return httpx.get(f"{sim_url(self.mesh, name)}/_sim/stats", timeout=10, trust_env=False).json()

    def serving(self, prompt: str) -> tuple[str, dict[str, Any]] | None:
        """The simulator generating for `prompt` right now, with its in-flight record."""
        for name in SIMS:
            for active in self.sim_stats(name)["active"]:
                if prompt in active["prompt_tail"]:
                    return name, active
        return None

    async def after_probe(self, name: str) -> None:
        """Return right after the inference service's next inventory probe of `name` went through the
        egress (its only traffic there while no generation runs: GET /api/tags and /api/ps)."""
        start = self.metrics().backend(name, "upstream_rq_2xx")
        deadline = time.monotonic() + self.settings.inventory_refresh_s + 5
        while self.metrics().backend(name, "upstream_rq_2xx") < start + 2:
            expect(time.monotonic() < deadline, f"no inventory probe of {name} seen through the egress")
            await asyncio.sleep(0.02)

    def backends(self) -> dict[str, dict[str, Any]]:
        """The inference service's view (GET /api/v1/inference/backends): health, circuit, errors."""
        out = self.curl("-s", f"{self.ingress}/api/v1/inference/backends", show=False)
        return {b["name"]: b for b in json.loads(out.stdout)["backends"]}

    def envoy_flags(self, name: str) -> str:
        return ",".join(envoy_health_flags(self.mesh, f"backend_{name}"))

    def metrics(self) -> metrics.Snapshot:
        return metrics.take(self.mesh)


class SseReader:
    """`curl -sN` of a REST stream in the background: its events arrive as curl prints them, so a
    scenario can act in the middle of the stream (kill the backend serving it) and read on."""

    def __init__(self, url: str, body: str) -> None:
        assert CURL, "curl is not on PATH"
        self.proc = subprocess.Popen([CURL, "-sN", "--max-time", str(int(REQUEST_TIMEOUT_S * 2)), url, "-d", body],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                                     text=True)
        # (arrival time, event); None once the stream has ended.
        self.events: queue.Queue[tuple[float, dict[str, Any]] | None] = queue.Queue()
        self.arrivals: list[float] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("data: "):
                self.events.put((time.monotonic(), json.loads(line.removeprefix("data: "))))
        self.events.put(None)

    def take(self, count: int, timeout_s: float) -> list[dict[str, Any]]:
        """The next `count` events, or fewer if the stream ends first."""
        out: list[dict[str, Any]] = []
        while len(out) < count:
            try:
                item = self.events.get(timeout=timeout_s)
            except queue.Empty:
                raise ScenarioFailed(f"no event for {timeout_s:g} s after {len(out)}: the stream hangs") from None
            if item is None:
                break
            self.arrivals.append(item[0])
            out.append(item[1])
        return out

    def longest_pause_s(self) -> float:
        return max((b - a for a, b in zip(self.arrivals, self.arrivals[1:], strict=False)), default=0.0)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def route(done: dict[str, Any]) -> str:
    """How a generation was served, in words."""
    backends = done["backends"]
    if len(backends) == 1:
        return f"done on {done['backend']}, first attempt"
    return f"done on {done['backend']} after {done['attempts']} attempts ({' -> '.join(backends)}), failed_over"
