"""Soak: a steady mixed load on the whole mesh while the memory (RSS) of every process is sampled.

Used by tests/chaos/test_soak.py (a short run in CI) and by ./scripts/soak (minutes, with a table):

    ./scripts/soak                       # 5 minutes, monolith, 2 simulators
    ./scripts/soak --duration 900 --shape microservices

The load mixes every kind of traffic the mesh carries, each from its own paced worker, through the
ingress: gRPC Generate streams, streams the client cancels after a few tokens, unary chat over
REST, SSE streams over REST, the OpenAI-compatible gateway, judge and a two-juror jury, and
embeddings. RSS comes from /proc/<pid>/status (VmRSS) of every process the launcher started.

Growth is measured after a warm-up (allocators, caches and connection pools fill first): the
median of the first samples after it against the median of the last ones, and a least-squares
slope in MB per minute over everything after it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx

from llmmesh.common.v1 import common_pb2
from llmmesh.inference.v1 import inference_service_pb2 as pb
from llmmesh.inference.v1 import inference_service_pb2_grpc as pb_grpc
from llmmesh.judge.v1 import judge_service_pb2 as judge_pb2
from llmmesh.judge.v1 import judge_service_pb2_grpc as judge_grpc
from llmmesh.jury.v1 import jury_service_pb2 as jury_pb2
from llmmesh.jury.v1 import jury_service_pb2_grpc as jury_grpc
from llmmesh.launcher.up import Mesh
from llmmesh.topology.description import Shape

WINDOW = 5  # samples in the "start" and "end" medians


@dataclass
class ProcessMemory:
    name: str
    pid: int
    samples: list[tuple[float, float]] = field(default_factory=list)  # (seconds since start, MiB)

    def after(self, warmup_s: float) -> list[tuple[float, float]]:
        return [s for s in self.samples if s[0] >= warmup_s]

    def start_mb(self, warmup_s: float) -> float:
        return statistics.median(mb for _, mb in self.after(warmup_s)[:WINDOW])

    def end_mb(self, warmup_s: float) -> float:
        return statistics.median(mb for _, mb in self.after(warmup_s)[-WINDOW:])

    def peak_mb(self) -> float:
        return max(mb for _, mb in self.samples)

    def growth_mb(self, warmup_s: float) -> float:
        return self.end_mb(warmup_s) - self.start_mb(warmup_s)

    def slope_mb_per_min(self, warmup_s: float) -> float:
        pts = self.after(warmup_s)
        if len(pts) < 2:
            return 0.0
        mt = statistics.fmean(t for t, _ in pts)
        mm = statistics.fmean(m for _, m in pts)
        var = sum((t - mt) ** 2 for t, _ in pts)
        return 60 * sum((t - mt) * (m - mm) for t, m in pts) / var if var else 0.0


@dataclass
class SoakResult:
    duration_s: float
    warmup_s: float
    processes: list[ProcessMemory]
    ok: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def table(self) -> str:
        w = self.warmup_s
        rows = ["| process | pid | RSS at warm-up end (MiB) | RSS at end (MiB) | growth (MiB) | slope (MiB/min) "
                "| peak (MiB) |", "|---|---:|---:|---:|---:|---:|---:|"]
        for p in self.processes:
            rows.append(f"| {p.name} | {p.pid} | {p.start_mb(w):.1f} | {p.end_mb(w):.1f} | {p.growth_mb(w):+.1f} | "
                        f"{p.slope_mb_per_min(w):+.2f} | {p.peak_mb():.1f} |")
        rows += ["", "| traffic | ok | failed |", "|---|---:|---:|"]
        for kind in sorted(set(self.ok) | set(self.failed)):
            rows.append(f"| {kind} | {self.ok[kind]} | {self.failed[kind]} |")
        return "\n".join(rows)


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _options(tokens: int) -> common_pb2.GenerationOptions:
    return common_pb2.GenerationOptions(max_tokens=tokens)


async def run_soak(mesh: Mesh, duration_s: float, warmup_s: float, sample_every_s: float = 1.0,
                   pace_s: float = 0.05, progress: Callable[[str], None] | None = None) -> SoakResult:
    """Drive the mixed load for `duration_s` and sample every process's RSS meanwhile."""
    procs = [ProcessMemory(c.name, c.proc.pid) for c in mesh.supervisor.children]
    result = SoakResult(duration_s, warmup_s, procs)
    t0 = time.monotonic()
    stop = t0 + duration_s
    base = f"http://{mesh.ingress}"
    model = mesh.choice.default_model

    async with (grpc.aio.insecure_channel(mesh.ingress) as channel,
                httpx.AsyncClient(base_url=base, timeout=30, trust_env=False) as http):
        inference = pb_grpc.InferenceServiceStub(channel)
        judge = judge_grpc.JudgeServiceStub(channel)
        jury = jury_grpc.JuryServiceStub(channel)

        async def generate() -> None:
            last = None
            async for ev in inference.Generate(pb.GenerateRequest(prompt="soak", options=_options(24)), timeout=30):
                last = ev
            assert last is not None and last.WhichOneof("event") == "done", last

        async def cancelled() -> None:
            call = inference.Generate(pb.GenerateRequest(prompt="soak cancel", options=_options(32)), timeout=30)
            n = 0
            async for _ in call:
                n += 1
                if n == 3:
                    call.cancel()
                    break

        async def rest_chat() -> None:
            r = await http.post("/api/v1/inference/chat", json={
                "messages": [{"role": "ROLE_USER", "content": "soak"}], "options": {"max_tokens": 16}})
            assert r.status_code == 200 and r.json()["message"]["content"], r.text[:300]

        async def rest_sse() -> None:
            async with http.stream("POST", "/api/v1/inference/generate",
                                   json={"prompt": "soak sse", "options": {"max_tokens": 16}}) as r:
                assert r.status_code == 200, r.status_code
                body = (await r.aread()).decode()
            assert '"done"' in body.rsplit("data: ", 1)[-1], body[-300:]

        async def openai_stream() -> None:
            async with http.stream("POST", "/v1/chat/completions", json={
                    "model": model, "stream": True, "max_tokens": 16,
                    "messages": [{"role": "user", "content": "soak"}]}) as r:
                assert r.status_code == 200, r.status_code
                body = (await r.aread()).decode()
            assert "[DONE]" in body, body[-300:]

        async def judge_call() -> None:
            await judge.Evaluate(judge_pb2.EvaluateRequest(question="Capital of France?", answer="Paris.",
                                                           judge_type="factual"), timeout=30)

        async def jury_call() -> None:
            resp = await jury.Evaluate(jury_pb2.EvaluateRequest(
                question="Capital of France?", answer="Paris.",
                panel=[jury_pb2.Juror(criterion="factual"), jury_pb2.Juror(criterion="relevance")]), timeout=30)
            assert len(resp.verdicts) == 2

        async def embed() -> None:
            resp = await inference.Embed(pb.EmbedRequest(inputs=["soak one", "soak two"]), timeout=30)
            assert len(resp.embeddings) == 2

        kinds: list[tuple[str, Callable[[], Awaitable[None]], int]] = [
            ("grpc generate", generate, 3), ("grpc generate, cancelled", cancelled, 1),
            ("rest chat", rest_chat, 1), ("rest sse generate", rest_sse, 1),
            ("openai chat stream", openai_stream, 1), ("judge", judge_call, 1), ("jury", jury_call, 1),
            ("embed", embed, 1)]

        async def worker(kind: str, fn: Callable[[], Awaitable[None]]) -> None:
            while time.monotonic() < stop:
                try:
                    await fn()
                    result.ok[kind] += 1
                except Exception as exc:
                    result.failed[kind] += 1
                    if len(result.failures) < 20:
                        result.failures.append(f"{kind}: {type(exc).__name__}: {str(exc)[:300]}")
                await asyncio.sleep(pace_s)

        async def sampler() -> None:
            next_at = t0
            last_report = t0
            while time.monotonic() < stop:
                now = time.monotonic()
                for p in procs:
                    p.samples.append((now - t0, rss_mb(p.pid)))
                if progress and now - last_report >= 30:
                    last_report = now
                    done = sum(result.ok.values())
                    progress(f"  {now - t0:5.0f}s  {done} requests ok, {sum(result.failed.values())} failed; RSS "
                             + ", ".join(f"{p.name} {p.samples[-1][1]:.0f}" for p in procs))
                next_at += sample_every_s
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))

        await asyncio.gather(sampler(), *(worker(kind, fn) for kind, fn, n in kinds for _ in range(n)))
    return result


def main(argv: list[str] | None = None) -> int:
    from tests.chaos.drills import sims_mesh

    p = argparse.ArgumentParser(prog="scripts/soak", description="Steady mixed load; RSS of every process over time.")
    p.add_argument("--duration", type=float, default=300.0, help="seconds of load (default 300)")
    p.add_argument("--warmup", type=float, default=60.0, help="seconds before growth is measured (default 60)")
    p.add_argument("--shape", choices=[s.value for s in Shape], default=Shape.MONOLITH.value)
    p.add_argument("--sims", type=int, default=2, help="simulator backends (default 2)")
    p.add_argument("--pace", type=float, default=0.05, help="pause between one worker's requests (default 0.05 s)")
    p.add_argument("--max-growth", type=float, default=32.0,
                   help="fail if any process grew more than this many MiB after the warm-up (default 32)")
    p.add_argument("--json", type=Path, help="also write the samples as JSON here")
    a = p.parse_args(argv)
    if a.warmup >= a.duration - WINDOW:
        p.error("--warmup must leave some of --duration to measure")
    state = Path(tempfile.mkdtemp(prefix="llmmesh-soak-"))
    print(f"soak: {a.duration:.0f} s of mixed load ({a.shape}, {a.sims} simulators), warm-up {a.warmup:.0f} s; "
          f"logs in {state / 'logs'}", file=sys.stderr)
    with sims_mesh(state, sim_count=a.sims, shape=Shape(a.shape),
                      service_env={"LLMMESH_LOG_LEVEL": "WARNING"}) as mesh:
        result = asyncio.run(run_soak(mesh, a.duration, a.warmup, pace_s=a.pace,
                                      progress=lambda line: print(line, file=sys.stderr, flush=True)))
    print(result.table())
    if result.failures:
        print("\nfailures (first 20):\n" + "\n".join(result.failures))
    if a.json:
        a.json.write_text(json.dumps({p.name: p.samples for p in result.processes}))
    grew = [p.name for p in result.processes if p.growth_mb(a.warmup) > a.max_growth]
    if grew or result.failed:
        print(f"\nsoak: FAILED (grew > {a.max_growth:g} MiB: {grew or 'none'}; failed requests: "
              f"{sum(result.failed.values())})", file=sys.stderr)
        return 1
    print(f"\nsoak: ok, no process grew more than {a.max_growth:g} MiB after the warm-up", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
