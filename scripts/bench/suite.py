"""The whole benchmark suite (./scripts/bench/run): inference (mesh vs. direct backend, the
inference benchmark of ./scripts/bench-inference, run as is), patterns (judge latency, jury parallel
vs. sequential), REST vs. gRPC, overload, the response cache, the run store's cost and a
comparison's wall time, tracing on vs. off, the admission queue
(./scripts/bench/admission, run as is), and the patterns' quality on a real model
(./scripts/bench/patterns-quality, run as is). Writes docs/bench/report.md with PNG plots beside it
and prints the headline ratios.

Everything runs locally on 127.0.0.1; each part starts its own mesh on free ports and stops it
afterwards. The first four parts run against the Ollama simulator; the quality part against the
embedded llama.cpp server with SmolLM2-135M (or LLMMESH_BACKENDS when that is set).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import signal
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import admission_bench
import cache_bench
import inference_bench
import overload_bench
import patterns_bench
import patterns_quality
import plots
import protocols_bench
import runs_bench
import tracing_bench
from bench_common import bench_mesh, git_describe, loadavg, machine, percentile
from inference_load import PATH_INFO

from llmmesh.launcher.procs import LaunchError

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Headline:
    name: str
    value: str
    baseline: str


@dataclass
class Parts:
    inference: dict[str, Any] | None = None  # summary extracted from the inference benchmark's results
    inference_report: Path | None = None
    patterns: patterns_bench.PatternsResult | None = None
    protocols: protocols_bench.ProtocolsResult | None = None
    overload: overload_bench.OverloadResult | None = None
    cache: cache_bench.CacheResult | None = None
    runs: runs_bench.RunsResult | None = None
    tracing: tracing_bench.TracingResult | None = None
    admission: admission_bench.Result | None = None
    quality: patterns_quality.Run | None = None
    seconds: dict[str, float] = field(default_factory=dict)


# ---- inference: the other benchmark, run as it is -------------------------------------------------

def run_inference(out: Path, quick: bool) -> dict[str, Any] | None:
    """Run inference_bench.run() (it starts and stops its own mesh and writes its own report to
    `out`) and keep what it measured, for the plots and the headline."""
    argv = ["--out", str(out)]
    if quick:
        argv += ["--levels", "1,16", "--reps", "1", "--window", "1", "--relay-window", "1.5", "--paced-window", "1.5",
                 "--retries", "0"]
    try:
        # Its own report goes to `out`; its console copy would bury ours.
        with contextlib.redirect_stdout(sys.stderr):
            results, plan, _ = inference_bench.run(argv)
    except LaunchError as exc:
        print(f"bench: the inference benchmark failed ({exc}); its section is left out", file=sys.stderr)
        return None
    return summarize_inference(results, plan)


def summarize_inference(results: Any, plan: Any) -> dict[str, Any]:
    lat = results.latency
    levels = sorted({n for _, n in lat})
    paths = [p for p in PATH_INFO if any((p, n) in lat for n in levels)]
    summary: dict[str, Any] = {
        "levels": levels, "paths": paths, "tokens": plan.tokens,
        "ttft_p50": {k: s.p50 for k, s in lat.items()},
        "ttft_p95": {k: s.med(lambda r: r.p(95)) for k, s in lat.items()},
        "tps": {k: s.tps for k, s in lat.items()}, "errors": sum(s.errors for s in lat.values()),
        "paced": None,
    }
    paced = getattr(results, "paced", None)
    if paced:
        n = next(iter(paced))[1]
        d, m = paced.get(("direct", n)), paced.get(("mesh", n))
        if d and m:
            summary["paced"] = {"streams": n, "delay_ms": plan.paced_delay_ms, "tokens": plan.paced_tokens,
                                "direct_p50": d.p50, "mesh_p50": m.p50, "direct_tps": d.tps, "mesh_tps": m.tps}
    return summary


# ---- headline and report ---------------------------------------------------------------------------

def headlines(parts: Parts) -> list[Headline]:
    out: list[Headline] = []
    inf = parts.inference
    if inf:
        paced = inf["paced"]
        if paced:
            out.append(Headline(
                "mesh vs. direct backend, GPU-like pacing",
                f"{paced['mesh_tps'] / paced['direct_tps']:.0%} of the tokens/s, TTFT p50 "
                f"{paced['mesh_p50']:.1f} ms vs. {paced['direct_p50']:.1f} ms "
                f"({paced['mesh_p50'] - paced['direct_p50']:+.1f} ms)",
                f"the simulator called directly; {paced['streams']} streams at {paced['delay_ms']} ms/token"))
        one = min(inf["levels"])
        top = max(inf["levels"])
        ttft = inf["ttft_p50"]
        if ("mesh", one) in ttft and ("direct", one) in ttft:
            out.append(Headline(
                "mesh vs. direct backend, added latency",
                f"TTFT p50 {ttft[('mesh', one)] - ttft[('direct', one)]:+.1f} ms "
                f"({ttft[('mesh', one)]:.1f} vs. {ttft[('direct', one)]:.1f} ms)",
                f"the simulator called directly; {one} stream, zero token delay"))
        tps = inf["tps"]
        if ("mesh", top) in tps and ("direct", top) in tps:
            out.append(Headline(
                "mesh vs. direct backend, CPU-bound relay",
                f"{tps[('mesh', top)] / tps[('direct', top)]:.0%} of the tokens/s "
                f"({tps[('mesh', top)]:,.0f} vs. {tps[('direct', top)]:,.0f})",
                f"the simulator called directly; {top} streams, zero token delay (the relay's CPU is the limit)"))
    if parts.protocols:
        r = parts.protocols
        for call, what in (("unary", "chat"), ("stream", "generate")):
            g, rest = r.cells[(call, "grpc")], r.cells[(call, "rest")]
            out.append(Headline(
                f"REST vs. gRPC, {call} ({what})",
                f"latency p50 x{r.ratio(call, 'p50'):.2f} ({rest.p(50):.1f} vs. {g.p(50):.1f} ms), "
                f"throughput x{r.ratio(call, 'rps'):.2f} ({rest.rps:.0f} vs. {g.rps:.0f} req/s)",
                "the same call over gRPC through the same ingress"))
    if parts.patterns:
        p = parts.patterns
        for n in sorted(p.parallel_s):
            if n >= 4:
                out.append(Headline(
                    f"jury parallel vs. sequential, {n} jurors",
                    f"x{p.speedup(n):.2f} faster ({statistics.median(p.parallel_s[n]) * 1000:.0f} vs. "
                    f"{statistics.median(p.sequential_s[n]) * 1000:.0f} ms)",
                    f"the same {n} gradings as {n} judge calls one after another"))
    if parts.overload and parts.overload.levels:
        o = parts.overload
        worst = o.levels[-1]
        out.append(Headline(
            f"overload x{worst.multiple:g} capacity",
            f"{worst.share(overload_bench.OK):.0%} OK at {percentile(worst.ok_s, 50) * 1000:.0f} ms p50, "
            f"{worst.share(overload_bench.EXHAUSTED):.0%} RESOURCE_EXHAUSTED in "
            f"{percentile(worst.refused_s, 50) * 1000:.1f} ms p50; goodput {worst.goodput:.1f} req/s",
            f"capacity {o.capacity_rps:.1f} req/s, unloaded latency {statistics.median(o.unloaded_s) * 1000:.0f} ms"))
    if parts.cache:
        out.append(Headline("a repeated judge call (response cache)", cache_bench.headline(parts.cache),
                            f"the same judge call the first time, at {parts.cache.token_delay_ms} ms/token"))
    if parts.runs:
        out.extend(Headline(name, value, baseline) for name, value, baseline in runs_bench.headlines(parts.runs))
    if parts.tracing:
        out.append(Headline(*tracing_bench.headline(parts.tracing)))
    if parts.admission and parts.admission.level(2.0) and parts.admission.flooded:
        a = parts.admission
        low = max(p.refused() for m, p in a.levels if m <= 0.9)
        out.append(Headline(
            "admission queue, Poisson load up to 2x capacity",
            f"{low:.0%} refused at <= 90%; goodput at 2x {a.level(2.0).goodput(a.warmup_s) / a.capacity_rps:.0%} "
            f"of capacity; a light key's p99 under a 5x flood x{a.light_ratio():.2f} its unloaded p99",
            f"capacity {a.capacity_rps:.1f} req/s with {a.cap} slots; the light key alone"))
    if parts.quality:
        out.append(Headline("patterns quality on a real model", patterns_quality.headline(parts.quality.outcomes),
                            "the targets of issue #10 (success per pattern, arithmetic through the calculator, "
                            "judge latency, no call over 30 s, no malformed output)"))
    return out


def render(parts: Parts, env: dict[str, str], figures: dict[str, Path], out_dir: Path) -> str:
    lines: list[str] = []
    w = lines.append
    w("# Benchmark report")
    w("")
    w(f"- **Date**: {env['date']}; commit {env['commit']}. Generated by `./scripts/bench/run` in "
      f"{env['total_s']} (start-up and shutdown of every mesh included).")
    w(f"- **Machine**: {env['nproc']} CPUs ({env['cpu']}), shared and noisy: load average {env['load_before']} "
      f"before the run, {env['load_after']} after; other processes were using {env['busy_before']} cores just "
      f"before it started. Python {env['python']}. Every process of the mesh, the load generator included, "
      "shares those cores, so absolute figures are lower bounds; the ratios, measured side by side with "
      "interleaved repetitions, are the figures to quote.")
    w("- **Setup**: each part starts the mesh as `./scripts/up --backend sim` does (monolith, Envoy ingress + egress, "
      "the Ollama simulator as the backend) on free ports on 127.0.0.1, and stops it afterwards; the quality part "
      "(5) runs on a real model instead, as `./scripts/up --backend llama` does.")
    w("")
    w("## Headline ratios")
    w("")
    w("| what | result | measured against |")
    w("|---|---|---|")
    for h in headlines(parts):
        w(f"| {h.name} | {h.value} | {h.baseline} |")
    w("")
    inf = parts.inference
    w("## 1. Inference: the mesh vs. the backend called directly")
    w("")
    if inf:
        rel = parts.inference_report.relative_to(out_dir) if parts.inference_report and \
            parts.inference_report.is_relative_to(out_dir) else None
        link = f"[{rel}]({rel})" if rel else "its own report"
        w(f"The inference benchmark (`./scripts/bench-inference`, run as it is; full method, CPU breakdown and "
          f"per-hop figures in {link}). *direct* = the simulator over HTTP; *mesh* = gRPC → ingress → inference → "
          f"egress → simulator. Fast tokens (token delay 0, {inf['tokens']} tokens per stream): every process is "
          "CPU-bound, so this is the worst case for the relay.")
        w("")
        w("| streams | path | TTFT p50 (ms) | TTFT p95 (ms) | tokens/s | mesh / direct tokens/s |")
        w("|---:|---|---:|---:|---:|---:|")
        for n in inf["levels"]:
            for p in inf["paths"]:
                if (p, n) not in inf["tps"]:
                    continue
                ratio = inf["tps"][(p, n)] / inf["tps"][("direct", n)] if ("direct", n) in inf["tps"] else math.nan
                w(f"| {n} | {p} | {inf['ttft_p50'][(p, n)]:.2f} | {inf['ttft_p95'][(p, n)]:.2f} | "
                  f"{inf['tps'][(p, n)]:,.0f} | {'' if p == 'direct' else f'{ratio:.0%}'} |")
        paced = inf["paced"]
        if paced:
            w("")
            w(f"GPU-like pacing ({paced['delay_ms']} ms per token, {paced['streams']} streams, "
              f"{paced['tokens']} tokens each): TTFT p50 direct {paced['direct_p50']:.2f} ms, mesh "
              f"{paced['mesh_p50']:.2f} ms "
              f"({paced['mesh_p50'] - paced['direct_p50']:+.2f} ms); tokens/s direct {paced['direct_tps']:,.0f}, mesh "
              f"{paced['mesh_tps']:,.0f} ({paced['mesh_tps'] / paced['direct_tps']:.0%}).")
        if "inference" in figures:
            w("")
            w(f"![Inference: TTFT and throughput per path]({figures['inference'].name})")
    else:
        w("Not run (`--skip-inference`, or it failed: see the console).")
    w("")
    if parts.patterns:
        w("## 2. Patterns: judge latency, jury parallel vs. sequential")
        w("")
        lines.extend(patterns_bench.render(parts.patterns))
        w("")
        w(f"![Jury: parallel vs. sequential]({figures['jury'].name})")
        w("")
    if parts.protocols:
        w("## 3. REST vs. gRPC through the ingress")
        w("")
        lines.extend(protocols_bench.render(parts.protocols))
        w("")
        w(f"![REST vs. gRPC]({figures['protocols'].name})")
        w("")
        w("Reading it: REST is the same gRPC call behind Envoy's gRPC-JSON transcoder, so it costs Envoy more CPU "
          "per request (JSON ↔ protobuf, SSE framing). Client-side costs differ too and are not the mesh's: the "
          "gRPC client is grpcio's C core driven from asyncio, the REST client is pure-Python httpx over HTTP/1.1. "
          "A stream's latency includes reading every token event, which grpc.aio does one message per event-loop "
          "round trip while the SSE reader gets several events per read.")
        w("")
    if parts.overload:
        w("## 4. Overload: offered load beyond capacity")
        w("")
        lines.extend(overload_bench.render(parts.overload))
        w("")
        w(f"![Overload]({figures['overload'].name})")
        w("")
        w("With the admission queue off (`LLMMESH_QUEUE_MAX_LENGTH=0`; part 7 measures it on), the service never "
          "queues beyond its limit: an accepted request keeps its unloaded latency at any offered "
          "load, and the excess is refused within milliseconds with RESOURCE_EXHAUSTED and `RetryInfo` (HTTP 429 "
          "over REST). With Poisson arrivals some requests are refused even below capacity: bursts exceed the "
          "limit for a moment, and there is deliberately no queue to absorb them (a loss system: the refused "
          "share follows Erlang's B formula), so clients are expected to retry after `RetryInfo`'s delay.")
        w("")
    if parts.cache:
        w("## 6. Response cache: a judge call repeated")
        w("")
        lines.extend(cache_bench.render(parts.cache))
        w("")
    if parts.runs:
        w("## 8. Run store and comparisons")
        w("")
        lines.extend(runs_bench.render(parts.runs))
        w("")
    if parts.tracing:
        w("## 9. Tracing on vs. off")
        w("")
        lines.extend(tracing_bench.render(parts.tracing))
        w("")
    if parts.admission:
        w("## 7. Admission queue: Poisson load against capacity, and a flooding tenant")
        w("")
        w("`./scripts/bench/admission`, run as it is (setup, per-level figures and the two tenants in "
          "[admission.md](admission.md)):")
        w("")
        w("| target | measured | met |")
        w("|---|---|:-:|")
        for t in admission_bench.targets(parts.admission):
            w(f"| {t.what} | {t.measured} | {'✅' if t.met else '❌'} |")
        w("")
    if parts.quality:
        rel = parts.quality.report.relative_to(out_dir) if parts.quality.report.is_relative_to(out_dir) \
            else parts.quality.report
        w("## 5. Patterns quality on a real model")
        w("")
        w(f"`./scripts/bench/patterns-quality`, run as it is (task set, per-pattern figures and every failure in "
          f"[{rel}]({rel})): the task set and the README's examples over REST, with the services' defaults.")
        w("")
        w("| target | measured | met |")
        w("|---|---|:-:|")
        for t in patterns_quality.targets(parts.quality.outcomes):
            w(f"| {t.what} | {t.measured} | {'✅' if t.met else '❌'} |")
        w("")
    w("## Time per part")
    w("")
    w("| part | seconds |")
    w("|---|---:|")
    for name, s in parts.seconds.items():
        w(f"| {name} | {s:.0f} |")
    w("")
    return "\n".join(lines)


# ---- main --------------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="scripts/bench/run", description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "bench",
                   help="directory for report.md and the PNGs (default docs/bench)")
    p.add_argument("--inference-out", type=Path,
                   help="where the inference benchmark writes its own report (default OUT/inference.md)")
    p.add_argument("--quick", action="store_true", help="fewer repetitions and shorter windows (~1.5 min)")
    p.add_argument("--skip-inference", action="store_true", help="leave out the inference benchmark (~2 min)")
    p.add_argument("--skip-quality", action="store_true",
                   help="leave out the patterns quality benchmark on a real model (~40 min; --quick: ~5)")
    p.add_argument("--skip-admission", action="store_true",
                   help="leave out the admission benchmark (~3 min; --quick: ~1.5)")
    p.add_argument("--overload-limit", type=int, default=4,
                   help="LLMMESH_MAX_INFLIGHT_PER_BACKEND in the overload part (default 4)")
    return p.parse_args(argv)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    started = time.monotonic()
    out_dir: Path = a.out.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    env = machine()
    env["commit"] = git_describe()
    parts = Parts()
    q = a.quick

    def timed(name: str, fn):
        t0 = time.monotonic()
        try:
            return fn()
        finally:
            parts.seconds[name] = time.monotonic() - t0

    try:
        if not a.skip_inference:
            print("bench: 1/5 inference (mesh vs. direct backend)", file=sys.stderr)
            parts.inference_report = (a.inference_out or out_dir / "inference.md").resolve()
            parts.inference = timed("inference", lambda: run_inference(parts.inference_report, q))
        signal.signal(signal.SIGTERM, _interrupt)

        def patterns_and_protocols() -> None:
            with bench_mesh() as mesh:
                print("bench: 2/5 patterns (judge, jury parallel vs. sequential)", file=sys.stderr)
                parts.patterns = asyncio.run(patterns_bench.run(
                    mesh, reps=1 if q else 3, judge_calls=10 if q else 30, judge_window_s=2 if q else 4))
                print("bench: 3/5 REST vs. gRPC", file=sys.stderr)
                parts.protocols = asyncio.run(protocols_bench.run(
                    mesh, latency_calls=40 if q else 200, window_s=1.5 if q else 4))

        timed("patterns + REST vs. gRPC", patterns_and_protocols)

        def cache() -> None:
            print("bench: response cache (a judge call repeated)", file=sys.stderr)
            with bench_mesh() as mesh:
                parts.cache = asyncio.run(cache_bench.run(mesh, reps=5 if q else 10))

        timed("response cache", cache)

        def runs() -> None:
            print("bench: run store and comparisons", file=sys.stderr)
            with bench_mesh() as mesh:
                parts.runs = asyncio.run(runs_bench.run(mesh, calls=60 if q else 150, reps=5 if q else 10))

        timed("run store + compare", runs)

        def tracing() -> None:
            print("bench: tracing on vs. off (two meshes)", file=sys.stderr)
            parts.tracing = tracing_bench.measure(60 if q else 150)

        timed("tracing", tracing)

        def overload() -> None:
            print("bench: 4/5 overload", file=sys.stderr)
            with bench_mesh(overload_bench.service_env(a.overload_limit)) as mesh:
                parts.overload = asyncio.run(overload_bench.run(mesh, a.overload_limit, window_s=3 if q else 6))

        timed("overload", overload)

        if not a.skip_admission:
            print("bench: admission queue (./scripts/bench/admission)", file=sys.stderr)
            admission_argv = ["--out", str(out_dir), *(["--quick"] if q else [])]
            parts.admission = timed("admission", lambda: admission_bench.run(admission_argv))

        if not a.skip_quality:
            print("bench: 5/5 patterns quality on a real model", file=sys.stderr)
            argv = ["--out", str(out_dir), *(["--limit", "2", "--no-readme"] if q else [])]
            parts.quality = timed("patterns quality", lambda: patterns_quality.run(argv))
    except LaunchError as exc:
        print(f"bench: a process failed to start: {exc}", file=sys.stderr)
        return 1

    figures: dict[str, Path] = {}
    if parts.inference:
        figures["inference"] = plots.inference(parts.inference, out_dir / "inference.png")
    if parts.patterns:
        figures["jury"] = plots.jury(parts.patterns, out_dir / "patterns-jury.png")
    if parts.protocols:
        figures["protocols"] = plots.protocols(parts.protocols, out_dir / "rest-vs-grpc.png")
    if parts.overload:
        figures["overload"] = plots.overload(parts.overload, out_dir / "overload.png")
    env["load_after"] = loadavg()
    total = time.monotonic() - started
    env["total_s"] = f"{total / 60:.1f} minutes"
    report = render(parts, env, figures, out_dir)
    (out_dir / "report.md").write_text(report)
    print("\nHeadline ratios:")
    for h in headlines(parts):
        print(f"  {h.name}: {h.value}  [vs. {h.baseline}]")
    print(f"\nreport: {out_dir / 'report.md'} (+ {', '.join(p.name for p in figures.values())}); "
          f"{total:.0f} s in all", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
