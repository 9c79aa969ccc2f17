"""The report's PNG figures (matplotlib, headless)."""

from __future__ import annotations

import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from bench_common import percentile
from overload_bench import EXHAUSTED, OK, OverloadResult
from patterns_bench import PatternsResult
from protocols_bench import CALLS, PROTOCOLS, ProtocolsResult

COLORS = {"direct": "#4c72b0", "service": "#8172b2", "egress": "#ccb974", "mesh": "#c44e52",
          "grpc": "#4c72b0", "rest": "#dd8452", "parallel": "#55a868", "sequential": "#c44e52"}
DPI = 110


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _bars(ax, groups: list[str], series: dict[str, list[float]], ylabel: str, title: str, fmt: str = "{:.0f}") -> None:
    width = 0.8 / max(1, len(series))
    for i, (name, values) in enumerate(series.items()):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        bars = ax.bar(xs, values, width, label=name, color=COLORS.get(name.split()[0]))
        for b, v in zip(bars, values, strict=True):
            if v == v:  # not NaN
                ax.annotate(fmt.format(v), (b.get_x() + b.get_width() / 2, b.get_height()), ha="center",
                            va="bottom", fontsize=7)
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)


def inference(summary: dict, path: Path) -> Path:
    """summary: {"levels": [...], "paths": [...], "ttft_p50": {(path, n): ms}, "tps": {(path, n): tok/s}}."""
    levels, paths = summary["levels"], summary["paths"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    groups = [f"{n} stream{'s' if n > 1 else ''}" for n in levels]
    _bars(a, groups, {p: [summary["ttft_p50"].get((p, n), float("nan")) for n in levels] for p in paths},
          "ms", "Time to first token, p50 (fast tokens)", "{:.1f}")
    _bars(b, groups, {p: [summary["tps"].get((p, n), float("nan")) / 1000 for n in levels] for p in paths},
          "thousand tokens/s", "Throughput (fast tokens, CPU-bound on 2 cores)", "{:.1f}")
    return _save(fig, path)


def jury(r: PatternsResult, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ns = list(r.parallel_s)
    for name, data in (("parallel", r.parallel_s), ("sequential", r.sequential_s)):
        ax.plot(ns, [statistics.median(data[n]) * 1000 for n in ns], marker="o", label=f"{name} jury",
                color=COLORS[name])
    ax.axhline(percentile(r.judge_latencies_s, 50) * 1000, linestyle="--", color="grey",
               label="one judge call (p50)")
    for n in ns:
        ax.annotate(f"x{r.speedup(n):.1f}", (n, statistics.median(r.sequential_s[n]) * 1000),
                    textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
    ax.set_xticks(ns)
    ax.margins(y=0.12)
    ax.set_xlabel("jurors")
    ax.set_ylabel("wall time (ms)")
    ax.set_title(f"Jury: parallel vs. sequential (model time ~{r.verdict_tokens * r.token_delay_ms} ms per grading)",
                 fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def protocols(r: ProtocolsResult, path: Path) -> Path:
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    series = {}
    for proto in PROTOCOLS:
        series[f"{proto} p50"] = [r.cells[(c, proto)].p(50) for c in CALLS]
    for proto in PROTOCOLS:
        series[f"{proto} p95"] = [r.cells[(c, proto)].p(95) for c in CALLS]
    width = 0.8 / len(series)
    for i, (name, values) in enumerate(series.items()):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(CALLS))]
        bars = a.bar(xs, values, width, label=name, color=COLORS[name.split()[0]],
                     alpha=1.0 if name.endswith("p50") else 0.55)
        for bar, v in zip(bars, values, strict=True):
            a.annotate(f"{v:.1f}", (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom",
                       fontsize=7)
    a.set_xticks(range(len(CALLS)), ["unary (chat)", "stream (generate)"])
    a.set_ylabel("ms")
    a.set_title("Latency through the ingress, one call at a time", fontsize=10)
    a.legend(fontsize=8)
    a.grid(axis="y", alpha=0.3)
    _bars(b, ["unary (chat)", "stream (generate)"], {p: [r.cells[(c, p)].rps for c in CALLS] for p in PROTOCOLS},
          "requests/s", f"Throughput, {r.concurrency} concurrent callers")
    return _save(fig, path)


def overload(r: OverloadResult, path: Path) -> Path:
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    labels = [f"x{lv.multiple:g}\n{lv.offered_rps:.0f} req/s" for lv in r.levels]
    ok = [lv.share(OK) * 100 for lv in r.levels]
    refused = [lv.share(EXHAUSTED) * 100 for lv in r.levels]
    a.bar(labels, ok, color="#55a868", label="OK")
    a.bar(labels, refused, bottom=ok, color="#c44e52", label="RESOURCE_EXHAUSTED")
    a.set_ylabel("% of requests")
    a.set_xlabel("offered load (multiple of capacity)")
    a.set_title(f"Outcome beyond capacity (limit {r.limit} in flight per backend)", fontsize=10)
    a.legend(fontsize=8)
    for i, lv in enumerate(r.levels):
        a.annotate(f"{lv.goodput:.1f}/s ok", (i, 101), ha="center", va="bottom", fontsize=7)
    a.set_ylim(0, 112)
    xs = range(len(r.levels))
    for name, getter, color in (("OK p50", lambda lv: lv.ok_s, "#55a868"),
                                ("refused p50", lambda lv: lv.refused_s, "#c44e52")):
        ys = [percentile(getter(lv), 50) * 1000 for lv in r.levels]
        b.plot(xs, ys, marker="o", label=name, color=color)
        p95 = [percentile(getter(lv), 95) * 1000 for lv in r.levels]
        b.plot(xs, p95, marker=".", linestyle=":", label=name.replace("p50", "p95"), color=color)
    b.set_yscale("log")
    b.set_xticks(list(xs), labels)
    b.set_ylabel("ms (log scale)")
    b.set_title("Latency: accepted requests vs. refusals", fontsize=10)
    b.legend(fontsize=8)
    b.grid(alpha=0.3, which="both")
    return _save(fig, path)
