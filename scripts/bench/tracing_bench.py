"""Tracing benchmark: what OpenTelemetry tracing costs a judge call.

Two meshes side by side in the same run, the same build and the same machine: one with tracing on
(OTEL_EXPORTER_OTLP_ENDPOINT pointing at an in-process OTLP/gRPC receiver, the tests' own, so every
span of the ingress Envoy, the services, the egress Envoy and the simulator is exported over the
wire with the SDK's default batching), one with tracing off (no tracer installed). Calls alternate
between them: JudgeService.Evaluate over gRPC through each ingress, the simulator answering at once
(token delay 0, so the mesh's own work is all there is to see), each call a question no earlier one
asked (the response cache never answers). The ratio is on / off of the p50s.

Standalone (two meshes on free ports, about a minute with --quick):
  python scripts/bench/tracing_bench.py [--quick] [--out docs/bench/tracing.md]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from bench_common import ROOT, bench_mesh, configure_sim, git_describe, machine, percentile

from llmmesh.judge.v1 import judge_service_pb2 as judge_pb2
from llmmesh.judge.v1 import judge_service_pb2_grpc as judge_grpc
from llmmesh.launcher.up import Mesh

sys.path.insert(0, str(ROOT))  # the tests' OTLP receiver, not a second copy of it
from tests.support.otlp import Receiver, by_trace, otlp_receiver, roots

VERDICT = {"reasoning": "the answer names the right city", "score": 4}


@dataclass
class TracingResult:
    calls: int
    on_s: list[float] = field(default_factory=list)
    off_s: list[float] = field(default_factory=list)
    spans: int = 0  # spans of the measured calls' traces (those the ingress started)
    traces: int = 0

    @property
    def ratio(self) -> float:
        return statistics.median(self.on_s) / statistics.median(self.off_s)

    @property
    def added_ms(self) -> float:
        return (statistics.median(self.on_s) - statistics.median(self.off_s)) * 1000


@contextlib.contextmanager
def traced_env(endpoint: str) -> Iterator[None]:
    """The OTEL_* variables for a mesh started inside the block (children and Envoy's rendered
    config read them at start)."""
    saved = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
    try:
        yield
    finally:
        if saved is None:
            del os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"]
        else:
            os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = saved


def settled(receiver: Receiver, quiet_s: float = 1.5, limit_s: float = 15.0) -> int:
    """The receiver's span count once the batched exports stop arriving."""
    deadline = time.monotonic() + limit_s
    count, since = len(receiver.spans()), time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - since < quiet_s:
        time.sleep(0.2)
        now = len(receiver.spans())
        if now != count:
            count, since = now, time.monotonic()
    return count


async def run(on: Mesh, off: Mesh, receiver: Receiver, calls: int = 150) -> TracingResult:
    for mesh in (on, off):
        configure_sim(mesh, "token_delay_ms=0", [{"match": "Criterion:", "response": json.dumps(VERDICT)}])
    result = TracingResult(calls)
    async with grpc.aio.insecure_channel(on.ingress) as on_ch, grpc.aio.insecure_channel(off.ingress) as off_ch:
        stubs = {True: judge_grpc.JudgeServiceStub(on_ch), False: judge_grpc.JudgeServiceStub(off_ch)}

        async def timed(traced: bool) -> float:
            request = judge_pb2.EvaluateRequest(question=f"What is the capital of France? ({uuid.uuid4().hex})",
                                                answer="Paris.", store=False)
            t0 = time.perf_counter()
            await stubs[traced].Evaluate(request, timeout=60)
            return time.perf_counter() - t0

        for _ in range(10):  # warm-up: channels, connections, the SDK's exporter
            await timed(True)
            await timed(False)
        settled(receiver)  # the warm-up's late batches, before they are cleared
        receiver.clear()
        for i in range(calls * 2):
            traced = i % 2 == 0
            (result.on_s if traced else result.off_s).append(await timed(traced))
    settled(receiver)
    # The judge calls' traces (not the inventory's background probes): rooted at the ingress Envoy.
    calls_traces = [t for t in by_trace(receiver.spans()).values()
                    if any(r.service == "llmmesh-ingress" for r in roots(t))]
    result.spans, result.traces = sum(map(len, calls_traces)), len(calls_traces)
    print(f"  tracing: p50 x{result.ratio:.3f} ({result.added_ms:+.2f} ms), {result.spans} spans in "
          f"{result.traces} traces", file=sys.stderr)
    return result


def measure(calls: int) -> TracingResult:
    """Both meshes and the receiver, started and stopped here."""
    with otlp_receiver() as receiver, contextlib.ExitStack() as meshes:
        with traced_env(receiver.endpoint):
            on = meshes.enter_context(bench_mesh())
        off = meshes.enter_context(bench_mesh())  # started after the variables are restored
        return asyncio.run(run(on, off, receiver, calls))


def headline(r: TracingResult) -> tuple[str, str, str]:
    return ("tracing on (OTLP export of every span) vs. off, judge call",
            f"p50 x{r.ratio:.2f} ({statistics.median(r.on_s) * 1000:.2f} vs. {statistics.median(r.off_s) * 1000:.2f}"
            f" ms, {r.added_ms:+.2f} ms)",
            "the same judge call on a second mesh with tracing off, alternating")


def render(r: TracingResult) -> list[str]:
    def ms(values: list[float], q: float) -> str:
        return f"{percentile(values, q) * 1000:.2f}"

    per_call = r.spans / r.traces if r.traces else 0.0
    return [
        "JudgeService.Evaluate over gRPC through the ingress, the simulator answering at once, on two meshes "
        f"started side by side: tracing on (every span exported over OTLP/gRPC to a local receiver, default "
        f"batching) and off, alternating call by call, {r.calls} calls each, each a new question (no cache hit).",
        "",
        "| tracing | p50 (ms) | p95 (ms) | p99 (ms) |",
        "|---|---:|---:|---:|",
        f"| on | {ms(r.on_s, 50)} | {ms(r.on_s, 95)} | {ms(r.on_s, 99)} |",
        f"| off | {ms(r.off_s, 50)} | {ms(r.off_s, 95)} | {ms(r.off_s, 99)} |",
        "",
        f"**On / off: p50 x{r.ratio:.2f}** ({r.added_ms:+.2f} ms). The receiver got {r.traces} traces rooted at "
        f"the ingress, {r.spans} spans ({per_call:.1f} per judge call: both Envoys, the RPCs, the model call, the "
        "generation, queue wait, backend attempt, HTTP call, simulator). The receiver decodes them in the load "
        "generator's process and both meshes share the machine's cores, so on a small shared machine the "
        "difference is within run-to-run noise of a few ms: compare several runs before reading much into it.",
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer calls (~1 minute)")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "bench" / "tracing.md")
    a = p.parse_args(argv)
    result = measure(60 if a.quick else 150)
    env = machine()
    env["commit"] = git_describe()
    lines = ["# Tracing benchmark", "", (__doc__ or "").split("\n\n")[0], "",
             f"Run: `python scripts/bench/tracing_bench.py{' --quick' if a.quick else ''}`; "
             + ", ".join(f"{k}: {v}" for k, v in env.items()), "", *render(result), ""]
    a.out.write_text("\n".join(lines))
    print("\n".join(render(result)))
    print(f"report: {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
