"""Admission benchmark (./scripts/bench/admission): the admission queue under offered load.

The mesh runs as `./scripts/up --backend sim` does, with API keys on (two keys, `light` and `heavy`,
weight 1 each) and one simulator that takes at most CAP generations at once (like a GPU backend at
its limit) behind `LLMMESH_MAX_INFLIGHT_PER_BACKEND=CAP`, so capacity is known: it is measured
first, with a closed loop of exactly CAP callers. Then gRPC Generate calls arrive open-loop
(Poisson, as independent clients do) through the ingress:

1. One tenant at 50, 90, 120 and 200% of capacity: the share refused (RESOURCE_EXHAUSTED), the queue
   wait of the admitted (`done.queue_wait_ms`) at p50/p99, goodput (completions per second once the
   slots are full, against capacity) and the longest queue seen.
2. Two tenants: `light` alone at 80% of its fair share (40% of capacity), then again while `heavy`
   floods at 5x its share (250% of capacity): light's p99 latency against its unloaded p99.

Targets (issue 12): nothing refused at <= 90%; at 200% goodput >= 95% of capacity with the queue
bounded; light's p99 under the flood <= 1.5x its unloaded p99. Writes docs/bench/admission.md
(+ .json) and prints the headline.

    ./scripts/bench/admission            # ~3 minutes
    ./scripts/bench/admission --quick    # ~2 minutes
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import secrets
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import grpc
from bench_common import CpuMeter, bench_mesh, configure_sim, git_describe, loadavg, machine, mesh_pids, percentile

from llmmesh.common.v1 import common_pb2
from llmmesh.inference.v1 import inference_service_pb2 as pb
from llmmesh.inference.v1 import inference_service_pb2_grpc as pb_grpc
from llmmesh.launcher.procs import LaunchError

ROOT = Path(__file__).resolve().parents[2]
OK, EXHAUSTED = "OK", "RESOURCE_EXHAUSTED"
TENANTS = ("light", "heavy")
MULTIPLES = (0.5, 0.9, 1.2, 2.0)
LIGHT_OF_SHARE, FLOOD_OF_SHARE = 0.8, 5.0
# Targets (issue 12).
MAX_REFUSED_AT_OR_BELOW_90 = 0.0
MIN_GOODPUT_AT_200 = 0.95
MAX_LIGHT_P99_RATIO = 1.5


@dataclass
class Call:
    tenant: str
    arrived_s: float  # from the start of its phase
    ended_s: float
    code: str
    queue_wait_s: float = 0.0
    queued: bool = False
    longest_queue: int = 0

    @property
    def latency_s(self) -> float:
        return self.ended_s - self.arrived_s


@dataclass
class Phase:
    name: str
    window_s: float
    offered_rps: dict[str, float]
    calls: list[Call] = field(default_factory=list)
    # Cores busy during the phase: the mesh's processes and the load generator, and everything else
    # on the (shared) machine.
    cores: dict[str, float] = field(default_factory=dict)

    def of(self, tenant: str | None = None) -> list[Call]:
        return [c for c in self.calls if tenant is None or c.tenant == tenant]

    def refused(self, tenant: str | None = None) -> float:
        calls = self.of(tenant)
        return sum(c.code == EXHAUSTED for c in calls) / len(calls) if calls else 0.0

    def ok(self, tenant: str | None = None) -> list[Call]:
        return [c for c in self.of(tenant) if c.code == OK]

    def other(self) -> int:
        return sum(c.code not in (OK, EXHAUSTED) for c in self.calls)

    def goodput(self, warmup_s: float) -> float:
        """Completions per second between `warmup_s` (the slots have filled) and the window's end."""
        span = self.window_s - warmup_s
        return sum(warmup_s <= c.ended_s <= self.window_s for c in self.ok()) / span if span > 0 else 0.0

    def p(self, q: float, tenant: str | None = None, what: str = "latency_s") -> float:
        return percentile([getattr(c, what) for c in self.ok(tenant)], q)

    def longest_queue(self) -> int:
        return max((c.longest_queue for c in self.calls), default=0)


@dataclass
class Result:
    cap: int
    queue_length: int
    tokens: int
    token_delay_ms: int
    capacity_rps: float = 0.0
    unloaded_s: list[float] = field(default_factory=list)
    warmup_s: float = 0.0
    levels: list[tuple[float, Phase]] = field(default_factory=list)
    light_alone: Phase | None = None
    flooded: Phase | None = None
    env: dict[str, Any] = field(default_factory=dict)

    def level(self, multiple: float) -> Phase | None:
        return next((p for m, p in self.levels if m == multiple), None)

    def light_ratio(self) -> float:
        assert self.light_alone and self.flooded
        return self.flooded.p(99, "light") / self.light_alone.p(99, "light")


@dataclass(frozen=True)
class Target:
    what: str
    measured: str
    met: bool


def targets(r: Result) -> list[Target]:
    out = []
    low = [(m, p) for m, p in r.levels if m <= 0.9]
    worst = max((p.refused() for _, p in low), default=0.0)
    out.append(Target("nothing refused at <= 90% of capacity",
                      ", ".join(f"{p.refused():.1%} at {m:.0%}" for m, p in low), worst <= MAX_REFUSED_AT_OR_BELOW_90))
    top = r.level(2.0)
    if top is not None:
        ratio = top.goodput(r.warmup_s) / r.capacity_rps
        out.append(Target(f"goodput at 200% >= {MIN_GOODPUT_AT_200:.0%} of capacity, queue bounded",
                          f"{ratio:.0%} ({top.goodput(r.warmup_s):.1f} of {r.capacity_rps:.1f} req/s); longest "
                          f"queue {top.longest_queue()} of {r.queue_length}, wait p99 "
                          f"{top.p(99, what='queue_wait_s') * 1000:.0f} ms",
                          ratio >= MIN_GOODPUT_AT_200 and top.longest_queue() <= r.queue_length))
    if r.light_alone and r.flooded:
        out.append(Target(f"light tenant's p99 under a 5x flood <= {MAX_LIGHT_P99_RATIO}x its unloaded p99",
                          f"x{r.light_ratio():.2f} ({r.flooded.p(99, 'light') * 1000:.0f} vs. "
                          f"{r.light_alone.p(99, 'light') * 1000:.0f} ms); light refused "
                          f"{r.flooded.refused('light'):.1%}", r.light_ratio() <= MAX_LIGHT_P99_RATIO))
    return out


def headline(r: Result) -> str:
    met = targets(r)
    return f"admission: {sum(t.met for t in met)}/{len(met)} targets met; " + "; ".join(
        f"{t.what}: {t.measured}" for t in met)


# ---- load ----------------------------------------------------------------------------------------

class Load:
    def __init__(self, channel: grpc.aio.Channel, keys: dict[str, str], tokens: int, seed: int) -> None:
        self.stub = pb_grpc.InferenceServiceStub(channel)
        self.keys = keys
        # Generations differ in length, as real ones do (identical lengths would free a saturated
        # backend's slots in lock-step, a worst case no real workload has): N/2 to 3N/2 tokens.
        self.lengths = range(max(1, tokens // 2), tokens * 3 // 2 + 1)
        self.rng = random.Random(seed)

    async def one(self, tenant: str, t0: float) -> Call:
        arrived = time.perf_counter() - t0
        call = Call(tenant, arrived, arrived, "NO_DONE")
        request = pb.GenerateRequest(prompt="admission", options=common_pb2.GenerationOptions(
            max_tokens=self.rng.choice(self.lengths)))
        try:
            async for ev in self.stub.Generate(request, timeout=60,
                                               metadata=[("authorization", f"Bearer {self.keys[tenant]}")]):
                kind = ev.WhichOneof("event")
                if kind == "queued":
                    call.queued = True
                    call.longest_queue = max(call.longest_queue, ev.queued.queue_length)
                elif kind == "done":
                    call.code, call.queue_wait_s = OK, ev.done.queue_wait_ms / 1000
        except grpc.aio.AioRpcError as exc:
            call.code = exc.code().name
        call.ended_s = time.perf_counter() - t0
        return call

    async def open_loop(self, phase: Phase, rng: random.Random, pids: dict[str, int]) -> Phase:
        """Poisson arrivals per tenant at its offered rate for the window; every call to its end."""
        meter = CpuMeter(pids)
        meter.start()
        t0 = time.perf_counter()

        async def arrivals(tenant: str, rate: float) -> list[Call]:
            tasks = []
            next_at = 0.0
            while True:
                next_at += rng.expovariate(rate)
                if next_at >= phase.window_s:
                    break
                await asyncio.sleep(max(0.0, t0 + next_at - time.perf_counter()))
                tasks.append(asyncio.create_task(self.one(tenant, t0)))
            return list(await asyncio.gather(*tasks))

        for calls in await asyncio.gather(*(arrivals(t, r) for t, r in phase.offered_rps.items() if r > 0)):
            phase.calls += calls
        meter.stop()
        phase.cores = {"ours": sum(meter.cores(name) for name in pids), "others": meter.others()}
        return phase

    async def closed_loop(self, callers: int, seconds: float, warmup_s: float) -> float:
        """Completions per second of exactly `callers` callers, each calling again when done, counted
        as goodput is: from `warmup_s` to `seconds`."""
        t0 = time.perf_counter()
        ended: list[float] = []

        async def caller() -> None:
            while time.perf_counter() - t0 < seconds:
                call = await self.one("light", t0)
                if call.code == OK:
                    ended.append(call.ended_s)

        await asyncio.gather(*(caller() for _ in range(callers)))
        return sum(warmup_s <= t <= seconds for t in ended) / (seconds - warmup_s)


async def measure(ingress: str, pids: dict[str, int], keys: dict[str, str], r: Result, window_s: float,
                  seed: int) -> None:
    rng = random.Random(seed)
    async with grpc.aio.insecure_channel(ingress) as channel:
        load = Load(channel, keys, r.tokens, seed)
        for _ in range(3):
            await load.one("light", time.perf_counter())
        for _ in range(4):
            calls = await asyncio.gather(*(load.one("light", time.perf_counter()) for _ in range(4)))
            r.unloaded_s += [c.latency_s for c in calls if c.code == OK]
        # Goodput (and capacity) count from when the slots have filled: two unloaded latencies in.
        r.warmup_s = 2 * statistics.median(r.unloaded_s)
        r.capacity_rps = await load.closed_loop(r.cap, window_s, r.warmup_s)
        one_ms = statistics.median(r.unloaded_s) * 1000
        log(f"capacity {r.capacity_rps:.1f} req/s ({r.cap} slots, one request {one_ms:.0f} ms unloaded)")
        for m in MULTIPLES:
            phase = await load.open_loop(Phase(f"x{m:g}", window_s, {"light": m * r.capacity_rps}), rng, pids)
            r.levels.append((m, phase))
            log(f"  {m:.0%}: refused {phase.refused():.1%}, goodput {phase.goodput(r.warmup_s):.1f} req/s, queue "
                f"wait p99 {phase.p(99, what='queue_wait_s') * 1000:.0f} ms, longest queue {phase.longest_queue()}, "
                f"cores {_cores(phase)}")
        share = r.capacity_rps / len(TENANTS)
        light = LIGHT_OF_SHARE * share
        r.light_alone = await load.open_loop(Phase("light alone", window_s, {"light": light}), rng, pids)
        r.flooded = await load.open_loop(Phase("light + heavy flood", window_s,
                                               {"light": light, "heavy": FLOOD_OF_SHARE * share}), rng, pids)
        log(f"  light alone p99 {r.light_alone.p(99, 'light') * 1000:.0f} ms; under heavy's flood "
            f"{r.flooded.p(99, 'light') * 1000:.0f} ms (heavy refused {r.flooded.refused('heavy'):.0%}; cores "
            f"busy, mesh + client / others: {_cores(r.light_alone)} alone, {_cores(r.flooded)} flooded)")


def log(text: str) -> None:
    print(f"admission: {text}", file=sys.stderr)


# ---- report --------------------------------------------------------------------------------------

def _ms(seconds: float) -> str:
    return "-" if seconds != seconds else f"{seconds * 1000:.0f}"


def _cores(p: Phase) -> str:
    return f"{p.cores.get('ours', 0):.2f} / {p.cores.get('others', 0):.2f}"


def render(r: Result) -> str:
    e = r.env
    lines = [
        "# Admission benchmark",
        "",
        f"- **Date**: {e['date']}; commit {e['commit']}. Generated by `./scripts/bench/admission {e['argv']}` "
        f"in {e['total_s'] / 60:.1f} minutes.",
        f"- **Machine**: {e['nproc']} CPUs ({e['cpu']}), shared and noisy: load average {e['load_before']} before, "
        f"{e['load_after']} after. The load generator, Envoy, the mesh and the simulator share those cores.",
        f"- **Setup**: the monolith as `./scripts/up --backend sim` runs it, API keys on (`light`, `heavy`: weight 1 "
        f"each), one simulator taking at most {r.cap} generations at once (`max_concurrency`, 503 beyond) behind "
        f"`LLMMESH_MAX_INFLIGHT_PER_BACKEND={r.cap}`, `LLMMESH_QUEUE_MAX_LENGTH={r.queue_length}`. Each request is a "
        f"gRPC Generate through the ingress for {r.tokens // 2} to {r.tokens * 3 // 2} tokens (uniformly: real "
        "generations differ in length; identical ones would free a saturated backend's slots in lock-step) at "
        f"{r.token_delay_ms} ms per token: {statistics.median(r.unloaded_s) * 1000:.0f} ms unloaded (median). "
        f"**Capacity** (a closed loop of exactly {r.cap} callers): **{r.capacity_rps:.1f} req/s**. Arrivals are "
        f"Poisson, {r.levels[0][1].window_s:g} s per phase; capacity and goodput count completions from "
        f"{r.warmup_s:.1f} s into the window (the slots have filled) to its end; a queue wait is the admitted "
        "request's `done.queue_wait_ms`.",
        "",
        "## Targets (issue 12)",
        "",
        "| target | measured | met |",
        "|---|---|:-:|",
    ]
    lines += [f"| {t.what} | {t.measured} | {'✅' if t.met else '❌'} |" for t in targets(r)]
    lines += [
        "",
        "## One tenant, offered load against capacity",
        "",
        "| offered | req/s offered | requests | refused | other errors | queue wait p50 (ms) | queue wait p99 (ms) "
        "| latency p50 (ms) | latency p99 (ms) | goodput (req/s) | goodput / capacity | longest queue "
        "| cores: mesh + client / others |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m, p in r.levels:
        g = p.goodput(r.warmup_s)
        lines.append(f"| {m:.0%} | {p.offered_rps['light']:.1f} | {len(p.calls)} | {p.refused():.1%} | {p.other()} | "
                     f"{_ms(p.p(50, what='queue_wait_s'))} | {_ms(p.p(99, what='queue_wait_s'))} | {_ms(p.p(50))} | "
                     f"{_ms(p.p(99))} | {g:.1f} | {g / r.capacity_rps:.0%} | {p.longest_queue()} | {_cores(p)} |")
    if r.light_alone and r.flooded:
        lines += [
            "",
            f"## Two tenants: `heavy` floods at {FLOOD_OF_SHARE:g}x its share",
            "",
            f"Each key's fair share is half the capacity ({r.capacity_rps / 2:.1f} req/s). `light` offers "
            f"{LIGHT_OF_SHARE:.0%} of its share, first alone, then while `heavy` offers {FLOOD_OF_SHARE:g}x its own.",
            "",
            "| phase | tenant | req/s offered | requests | refused | latency p50 (ms) | latency p99 (ms) "
            "| queue wait p99 (ms) | cores: mesh + client / others |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for phase in (r.light_alone, r.flooded):
            for tenant, rate in phase.offered_rps.items():
                lines.append(f"| {phase.name} | {tenant} | {rate:.1f} | {len(phase.of(tenant))} | "
                             f"{phase.refused(tenant):.1%} | {_ms(phase.p(50, tenant))} | {_ms(phase.p(99, tenant))} | "
                             f"{_ms(phase.p(99, tenant, 'queue_wait_s'))} | {_cores(phase)} |")
        lines += ["", f"light's p99 under the flood: **x{r.light_ratio():.2f}** its unloaded p99."]
    lines += [
        "",
        "Reading it: below capacity the queue absorbs Poisson bursts that a queue-less service refuses (compare the "
        "overload part of `./scripts/bench/run`, which runs with `LLMMESH_QUEUE_MAX_LENGTH=0`); beyond it the slots "
        "stay busy, so goodput holds at capacity (or above the closed loop's: a waiting request takes a freed slot "
        "at once, while a closed-loop caller first has to get its answer and send the next), the queue stays at its "
        "bound and the excess is refused with `RetryInfo`. Under a flood the fair share serves `light` next "
        "whenever a slot frees, so its latency grows only by the wait for the next free slot, and when the queue is "
        "full its arrivals push out heavy's latest waiters instead of being refused. The cores columns say how busy "
        "the machine was with other work during each phase.",
        "",
    ]
    return "\n".join(lines)


CALL_FIELDS = [f.name for f in fields(Call)]


def _rounded(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value


def as_json(r: Result) -> dict[str, Any]:
    def phase(p: Phase | None) -> dict[str, Any] | None:
        if p is None:
            return None
        return {"name": p.name, "window_s": p.window_s, "offered_rps": p.offered_rps,
                "refused": {t: p.refused(t) for t in p.offered_rps}, "goodput_rps": p.goodput(r.warmup_s),
                "latency_p50_s": {t: p.p(50, t) for t in p.offered_rps},
                "latency_p99_s": {t: p.p(99, t) for t in p.offered_rps},
                "queue_wait_p50_s": p.p(50, what="queue_wait_s"), "queue_wait_p99_s": p.p(99, what="queue_wait_s"),
                "longest_queue": p.longest_queue(), "cores": p.cores,
                "calls": {"fields": CALL_FIELDS, "rows": [[_rounded(getattr(c, f)) for f in CALL_FIELDS]
                                                          for c in p.calls]}}

    return {"env": r.env, "headline": headline(r), "targets": [vars(t) for t in targets(r)],
            "setup": {"cap": r.cap, "queue_length": r.queue_length, "tokens": r.tokens,
                      "token_delay_ms": r.token_delay_ms, "capacity_rps": r.capacity_rps,
                      "unloaded_s": r.unloaded_s, "warmup_s": r.warmup_s},
            "levels": {f"{m:g}": phase(p) for m, p in r.levels},
            "light_alone": phase(r.light_alone), "flooded": phase(r.flooded)}


# ---- main ----------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="scripts/bench/admission", description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="shorter phases (~2 minutes in all)")
    p.add_argument("--cap", type=int, default=16, help="generations at once on the backend (default 16)")
    p.add_argument("--queue", type=int, default=64, help="LLMMESH_QUEUE_MAX_LENGTH (default 64)")
    p.add_argument("--tokens", type=int, default=8, help="mean tokens per request, N/2 to 3N/2 (default 8)")
    p.add_argument("--token-delay-ms", type=int, default=100, help="the simulator's delay per token (default 100)")
    p.add_argument("--window", type=float, help="seconds per phase (default 15; --quick: 6)")
    p.add_argument("--seed", type=int, default=12)
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "bench",
                   help="directory for admission.md and .json (default docs/bench)")
    a = p.parse_args(argv)
    a.window = a.window or (6.0 if a.quick else 15.0)
    return a


def key_file(directory: Path) -> tuple[Path, dict[str, str]]:
    """A key file with the two tenants' keys (scope inference, weight 1), and the keys."""
    keys = {t: f"bench-{t}-{secrets.token_urlsafe(16)}" for t in TENANTS}
    doc = {"keys": [{"name": t, "sha256": hashlib.sha256(k.encode()).hexdigest(), "scopes": ["inference"]}
                    for t, k in keys.items()]}
    path = directory / "keys.json"
    path.write_text(json.dumps(doc))
    return path, keys


def run(argv: list[str] | None = None) -> Result:
    """Run as the command line says; write the report; return what was measured."""
    a = parse_args(argv)
    started = time.monotonic()
    r = Result(a.cap, a.queue, a.tokens, a.token_delay_ms)
    r.env = {**machine(), "argv": " ".join(argv if argv is not None else sys.argv[1:]), "commit": git_describe()}
    with tempfile.TemporaryDirectory(prefix="llmmesh-admission-") as tmp:
        keys_path, keys = key_file(Path(tmp))
        env = {"LLMMESH_API_KEYS_FILE": str(keys_path), "LLMMESH_MAX_INFLIGHT_PER_BACKEND": str(a.cap),
               "LLMMESH_QUEUE_MAX_LENGTH": str(a.queue)}
        with bench_mesh(env) as mesh:
            configure_sim(mesh, f"token_delay_ms={a.token_delay_ms},max_concurrency={a.cap}")
            asyncio.run(measure(mesh.ingress, mesh_pids(mesh), keys, r, a.window, a.seed))
    r.env["load_after"] = loadavg()
    r.env["total_s"] = time.monotonic() - started
    out: Path = a.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    (out / "admission.md").write_text(render(r))
    (out / "admission.json").write_text(json.dumps(as_json(r), indent=1, default=str) + "\n")
    return r


def main(argv: list[str] | None = None) -> int:
    try:
        r = run(argv)
    except LaunchError as exc:
        print(f"admission: a process failed to start: {exc}", file=sys.stderr)
        return 1
    print(f"\n{headline(r)}")
    for t in targets(r):
        print(f"  {'met ' if t.met else 'MISS'}  {t.what}: {t.measured}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
