"""Patterns quality benchmark (./scripts/bench/patterns-quality): do the six patterns give useful
answers on a real model? It runs the task set kept in the repo (quality/tasks.yaml: tens of labelled
tasks per pattern) and the README's own pattern examples over REST through the Envoy ingress, as a
user's client would, and reports per pattern: success rate (a valid result, no error), correctness
where a label exists, p50/p95 latency, tokens, and errors by code and reason, against the targets
of issue #10. Writes docs/bench/patterns-quality.md (+ .json) and prints the headline.

    ./scripts/bench/patterns-quality                               # embedded llama.cpp + SmolLM2-135M
    ./scripts/bench/patterns-quality --patterns judge,tooluse --limit 5
    LLMMESH_BACKENDS=http://gpu:11434 ./scripts/bench/patterns-quality --model llama3.1:8b
    ./scripts/bench/patterns-quality --url http://127.0.0.1:8080   # a mesh that is already running

Without --url it starts its own mesh on free ports (the monolith, as ./scripts/up runs it) and stops
it afterwards: on the embedded llama.cpp server by default, or on LLMMESH_BACKENDS when that is set.
Request bodies carry no sampling options: the services' defaults are what is measured.
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
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from bench_common import bench_mesh, git_describe, loadavg, machine, percentile
from quality import taskset
from quality.calls import Outcome, run_task
from quality.taskset import Task

from llmmesh.common.cache_mode import CACHE_HEADER
from llmmesh.launcher.procs import LaunchError

ROOT = Path(__file__).resolve().parents[2]
MALFORMED = "MALFORMED_MODEL_OUTPUT"
# Targets (issue #10), measured on the embedded default on a 2-core machine.
MIN_SUCCESS = 0.95
MIN_ARITHMETIC = 0.80
JUDGE_P50_S, JUDGE_P95_S = 3.0, 8.0
MAX_CALL_S = 30.0
LABELS = {"judge": "judge", "jury": "jury", "tooluse": "tool use", "planexecute": "plan-and-execute",
          "reflection": "reflection", "collaboration": "collaboration"}


@dataclass
class PatternStats:
    pattern: str
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.outcomes)

    @property
    def succeeded(self) -> int:
        return sum(o.success for o in self.outcomes)

    @property
    def success_rate(self) -> float:
        return self.succeeded / self.n if self.n else float("nan")

    def correctness(self, tag: str | None = None) -> tuple[int, int]:
        """(correct, labelled) over the labelled calls (with `tag`, only the tasks tagged so)."""
        marks = [o.correct for o in self.outcomes if o.correct is not None and (tag is None or tag in o.task.tags)]
        return sum(marks), len(marks)

    def seconds(self) -> list[float]:
        return [o.seconds for o in self.outcomes]

    def p(self, q: float) -> float:
        return percentile(self.seconds(), q)

    def mean_usage(self, key: str) -> float:
        return statistics.fmean(o.usage()[key] for o in self.outcomes) if self.outcomes else float("nan")

    def errors(self) -> Counter[str]:
        return Counter(o.error.label for o in self.outcomes if o.error is not None)

    def invalid(self) -> int:
        return sum(o.error is None and not o.success for o in self.outcomes)



def stats_by_pattern(outcomes: Sequence[Outcome]) -> dict[str, PatternStats]:
    out: dict[str, PatternStats] = {}
    for o in outcomes:
        if "readme" not in o.task.tags:
            out.setdefault(o.task.pattern, PatternStats(o.task.pattern)).outcomes.append(o)
    return {p: out[p] for p in taskset.PATTERNS if p in out}


# ---- running ------------------------------------------------------------------------------------

async def run_tasks(base_url: str, tasks: Sequence[Task], *, concurrency: int, timeout_s: float, repeat: int,
                    progress: Callable[[int, int, Outcome], None] | None = None) -> list[Outcome]:
    """Every task `repeat` times, at most `concurrency` calls at once; outcomes in task order."""
    runs = [t for _ in range(repeat) for t in tasks]
    gate = asyncio.Semaphore(concurrency)
    done = 0
    # The model is measured, not the response cache: a repeated task must reach the model again.
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout_s, trust_env=False,
                                 headers={CACHE_HEADER: "bypass"}) as client:
        async def one(task: Task) -> Outcome:
            nonlocal done
            async with gate:
                outcome = await run_task(client, task)
            done += 1
            if progress:
                progress(done, len(runs), outcome)
            return outcome

        return list(await asyncio.gather(*(one(t) for t in runs)))


def print_progress(i: int, n: int, o: Outcome) -> None:
    mark = "ok " if o.success else "ERR" if o.error else "BAD"
    label = "" if o.correct is None else " correct" if o.correct else " WRONG"
    why = o.why()
    print(f"[{i}/{n}] {mark} {o.seconds:5.1f}s {o.task.key}{label}{': ' + why[:160] if why else ''}",
          file=sys.stderr, flush=True)


def models(base_url: str) -> dict[str, Any]:
    """The mesh's ListModels (default model, context windows, native tool support), for the report."""
    with contextlib.suppress(httpx.HTTPError, ValueError):
        resp = httpx.get(f"{base_url}/api/v1/inference/models", timeout=10, trust_env=False)
        if resp.status_code == 200:
            return resp.json()
    return {}


@contextlib.contextmanager
def target(a: argparse.Namespace) -> Iterator[str]:
    """The mesh's base URL: --url as given, else a mesh of our own, stopped on the way out."""
    if a.url:
        yield a.url.rstrip("/")
        return
    env = {"LLMMESH_DEFAULT_MODEL": a.model} if a.model else {}
    with bench_mesh(env, backend=a.backend, keep_logs=a.keep_logs) as mesh:
        yield f"http://{mesh.ingress}"


# ---- report -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    what: str
    measured: str
    met: bool


def readme_outcomes(outcomes: Sequence[Outcome]) -> list[Outcome]:
    return [o for o in outcomes if "readme" in o.task.tags]


def targets(outcomes: Sequence[Outcome]) -> list[Target]:
    stats = stats_by_pattern(outcomes)
    out = [Target(f"{LABELS[p]}: success ≥ {MIN_SUCCESS:.0%}", f"{s.success_rate:.0%} ({s.succeeded}/{s.n})",
                  s.success_rate >= MIN_SUCCESS) for p, s in stats.items()]
    if "tooluse" in stats:
        ok, n = stats["tooluse"].correctness("arithmetic")
        if n:
            out.append(Target(f"tool use: arithmetic correct through the calculator ≥ {MIN_ARITHMETIC:.0%}",
                              f"{ok / n:.0%} ({ok}/{n})", ok / n >= MIN_ARITHMETIC))
    if "judge" in stats:
        j = stats["judge"]
        out.append(Target(f"judge latency p50 ≤ {JUDGE_P50_S:g} s, p95 ≤ {JUDGE_P95_S:g} s",
                          f"p50 {j.p(50):.1f} s, p95 {j.p(95):.1f} s",
                          j.p(50) <= JUDGE_P50_S and j.p(95) <= JUDGE_P95_S))
    if outcomes:  # these two count every call, the README's examples included
        slow = sum(o.seconds > MAX_CALL_S for o in outcomes)
        worst = max(o.seconds for o in outcomes)
        out.append(Target(f"no call over {MAX_CALL_S:g} s", f"{slow} over; slowest {worst:.1f} s", slow == 0))
        # The target is the mesh's own budgets: a MALFORMED whose attempts were cut off at the token
        # limit. Every other MALFORMED (the model broke a rule after the repairs) is counted beside it.
        malformed = [o for o in outcomes if o.error is not None and o.error.reason == MALFORMED]
        cut = sum(int(o.error.metadata.get("cut_off", "0")) > 0 for o in malformed if o.error)
        out.append(Target(f"zero {MALFORMED} caused by a token budget the mesh chose",
                          f"{cut} (of {len(malformed)} {MALFORMED} in all)", cut == 0))
    if readme := readme_outcomes(outcomes):
        ok = sum(o.success for o in readme)
        out.append(Target("every README pattern example returns a valid result", _pct(ok, len(readme)),
                          ok == len(readme)))
    return out


def _pct(ok: int, n: int) -> str:
    return f"{ok / n:.0%} ({ok}/{n})" if n else "—"


def headline(outcomes: Sequence[Outcome]) -> str:
    """One line per run: success per pattern, and the arithmetic through the calculator."""
    stats = stats_by_pattern(outcomes)
    parts = []
    for p, s in stats.items():
        extra = ""
        if p == "tooluse" and (ar := s.correctness("arithmetic"))[1]:
            extra = f", arithmetic via calculator {ar[0] / ar[1]:.0%}"
        elif p == "judge":
            extra = f", p50 {s.p(50):.1f} s"
        parts.append(f"{LABELS[p]} {s.success_rate:.0%}{extra}")
    met = targets(outcomes)
    return f"{'; '.join(parts)} — {sum(t.met for t in met)}/{len(met)} targets met"


def _cell(text: str, width: int = 140) -> str:
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= width else text[:width - 1] + "…"


def render(outcomes: Sequence[Outcome], env: dict[str, Any]) -> str:
    stats = stats_by_pattern(outcomes)
    lines: list[str] = []
    w = lines.append
    w("# Patterns quality benchmark")
    w("")
    w(f"- **Date**: {env['date']}; commit {env['commit']}. Generated by `./scripts/bench/patterns-quality "
      f"{env['argv']}`".rstrip() + f" in {env['total_s'] / 60:.1f} minutes.")
    w(f"- **Mesh**: {env['mesh']}. **Default model**: `{env['models'].get('default_model') or '?'}`; models: "
      + (", ".join(f"`{m['name']}` (context {m.get('context_window', 0)} tokens, "
                   f"{'native' if m.get('native_tools') else 'prompted'} tool calls)"
                   for m in env["models"].get("models", [])) or "?") + ".")
    w(f"- **Machine**: {env['nproc']} CPUs ({env['cpu']}), load average {env['load_before']} before, "
      f"{env['load_after']} after. Calls over REST through the Envoy ingress, {env['concurrency']} at a time, "
      f"timeout {env['timeout_s']:g} s; each task run {env['repeat']} time(s), with the services' default "
      "sampling (the bodies carry no options).")
    w("- **Task set**: `scripts/bench/quality/tasks.yaml` (request bodies as a user sends them, with labels) "
      "and the README's pattern examples. *Success*: a result, no error, valid for the pattern (its own shape, "
      "and a usable answer: not empty, not a loop, not a JSON key or placeholder). *Correct*: the labelled "
      "properties hold (a verdict, a pairwise winner, a tool that must be called, a number that must appear).")
    w("")
    w("## Targets (issue #10)")
    w("")
    w("| target | measured | met |")
    w("|---|---|:-:|")
    for t in targets(outcomes):
        w(f"| {t.what} | {t.measured} | {'✅' if t.met else '❌'} |")
    w("")
    w("## Per pattern")
    w("")
    w("| pattern | calls | success | correct (labelled) | p50 s | p95 s | max s | prompt tok/call "
      "| output tok/call | model calls/call | errors |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for p, s in stats.items():
        errors = ", ".join(f"{k}: {v}" for k, v in s.errors().most_common())
        if s.invalid():
            errors = ", ".join(x for x in (errors, f"invalid result: {s.invalid()}") if x)
        w(f"| {LABELS[p]} | {s.n} | {_pct(s.succeeded, s.n)} | {_pct(*s.correctness())} | {s.p(50):.1f} | "
          f"{s.p(95):.1f} | {max(s.seconds()):.1f} | {s.mean_usage('prompt_tokens'):.0f} | "
          f"{s.mean_usage('output_tokens'):.0f} | {s.mean_usage('model_calls'):.1f} | {errors or '—'} |")
    tagged = [(p, tag, s.correctness(tag)) for p, s in stats.items()
              for tag in sorted({t for o in s.outcomes for t in o.task.tags}) if s.correctness(tag)[1]]
    if tagged:
        w("")
        w("| pattern | task group | correct |")
        w("|---|---|---:|")
        for p, tag, (ok, n) in tagged:
            w(f"| {LABELS[p]} | {tag} | {_pct(ok, n)} |")
    lines.extend(_effects(stats))
    lines.extend(_readme(outcomes))
    lines.extend(_failures(outcomes))
    return "\n".join(lines) + "\n"


def _effects(stats: dict[str, PatternStats]) -> list[str]:
    """The published effects to watch on bigger models: a jury agrees with labels better than one
    judge; refinement raises the critic's score."""
    out = ["", "## Effects to watch", ""]
    if "judge" in stats and "jury" in stats:
        j = stats["judge"]
        point = [o.correct for o in j.outcomes if o.correct is not None and "verdict" in o.task.expect]
        out.append(f"- Agreement with the labels, pass/fail verdicts: one judge {_pct(sum(point), len(point))}, "
                   f"a jury {_pct(*stats['jury'].correctness())} (different questions of the same kind).")
    if "reflection" in stats:
        firsts, finals = [], []
        for o in stats["reflection"].outcomes:
            if o.success and o.result and o.result.get("history"):
                firsts.append(o.result["history"][0]["score"])
                finals.append(o.result["final_score"])
        if firsts:
            out.append(f"- Reflection: the critic's mean score {statistics.fmean(firsts):.1f} on the first draft, "
                       f"{statistics.fmean(finals):.1f} on the final one ({len(firsts)} successful runs).")
    return out if len(out) > 3 else []


def _readme(outcomes: Sequence[Outcome]) -> list[str]:
    shown = readme_outcomes(outcomes)
    if not shown:
        return []
    out = ["", "## The README's pattern examples", "", "| example | route | result | s | answer or problem |",
           "|---|---|:-:|---:|---|"]
    for o in shown:
        r = o.result or {}
        said = o.why() or r.get("answer") or r.get("final_draft") or f"{r.get('verdict', '')} {r.get('score', '')}"
        out.append(f"| {o.task.key} | `{o.task.route}` | {'✅' if o.success else '❌'} | {o.seconds:.1f} | "
                   f"{_cell(str(said), 100)} |")
    return out


def _failures(outcomes: Sequence[Outcome]) -> list[str]:
    bad = [o for o in outcomes if "readme" not in o.task.tags and (not o.success or o.correct is False)]
    if not bad:
        return []
    out = ["", "## Failed and wrong calls", "", "| task | s | what went wrong |", "|---|---:|---|"]
    out += [f"| {o.task.key} | {o.seconds:.1f} | {_cell(o.why())} |" for o in bad]
    return out


def as_json(outcomes: Sequence[Outcome], env: dict[str, Any]) -> dict[str, Any]:
    stats = stats_by_pattern(outcomes)
    return {
        "env": env,
        "headline": headline(outcomes),
        "targets": [vars(t) for t in targets(outcomes)],
        "patterns": {p: {"calls": s.n, "success": s.succeeded, "correct": s.correctness()[0],
                         "labelled": s.correctness()[1], "p50_s": s.p(50), "p95_s": s.p(95),
                         "max_s": max(s.seconds()), "errors": dict(s.errors()),
                         "mean_usage": {k: s.mean_usage(k) for k in ("prompt_tokens", "output_tokens", "model_calls")}}
                     for p, s in stats.items()},
        "calls": [{"task": o.task.key, "tags": list(o.task.tags), "seconds": round(o.seconds, 3),
                   "success": o.success, "correct": o.correct, "why": o.why(), "usage": o.usage(),
                   "error": vars(o.error) if o.error else None} for o in outcomes],
    }


# ---- main ---------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="scripts/bench/patterns-quality", description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--patterns", default=",".join(taskset.PATTERNS),
                   help=f"comma-separated patterns (default all: {','.join(taskset.PATTERNS)})")
    p.add_argument("--limit", type=int, help="the first N tasks of each pattern (default all)")
    p.add_argument("--repeat", type=int, default=1, help="runs of each task (default 1)")
    p.add_argument("--concurrency", type=int, default=1, help="calls at once (default 1: a 2-core machine)")
    p.add_argument("--timeout", type=float, default=60.0, help="per-call timeout in seconds (default 60)")
    p.add_argument("--keep-logs", action="store_true", help="keep the mesh's logs (backend included)")
    p.add_argument("--no-readme", action="store_true", help="leave out the README's pattern examples")
    p.add_argument("--backend", default=None,
                   help="the mesh's backend: llama (default), ollama, sim, or 'env' for LLMMESH_BACKENDS "
                        "(the default when that is set)")
    p.add_argument("--model", default="", help="the services' default model (LLMMESH_DEFAULT_MODEL)")
    p.add_argument("--url", help="a running mesh's ingress, e.g. http://127.0.0.1:8080 (nothing is started)")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "bench",
                   help="directory for patterns-quality.md and .json (default docs/bench)")
    a = p.parse_args(argv)
    a.patterns = [x.strip() for x in a.patterns.split(",") if x.strip()]
    unknown = set(a.patterns) - set(taskset.PATTERNS)
    if unknown:
        p.error(f"unknown patterns {sorted(unknown)}; known: {', '.join(taskset.PATTERNS)}")
    if a.url and a.model:
        p.error("--model sets the default model of a mesh started here; a running mesh (--url) keeps its own")
    if a.backend is None:
        a.backend = "env" if os.environ.get("LLMMESH_BACKENDS", "").strip() else "llama"
    a.backend = "" if a.backend == "env" else a.backend
    return a


@dataclass
class Run:
    outcomes: list[Outcome]
    report: Path


def run(argv: list[str] | None = None) -> Run:
    """Run the benchmark as the command line says; write the report; return what it measured."""
    a = parse_args(argv)
    started = time.monotonic()
    tasks = taskset.select(taskset.load(), a.patterns, a.limit)
    if not a.no_readme:
        tasks += [t for t in taskset.readme_tasks() if t.pattern in a.patterns]
    env: dict[str, Any] = {**machine(), "argv": " ".join(argv if argv is not None else sys.argv[1:]),
                           "concurrency": a.concurrency, "timeout_s": a.timeout, "repeat": a.repeat}
    env["commit"] = git_describe()
    with target(a) as base_url:
        env["mesh"] = a.url or f"started here, backend {a.backend or 'LLMMESH_BACKENDS'}"
        env["models"] = models(base_url)
        print(f"patterns-quality: {len(tasks)} tasks x {a.repeat} against {base_url}", file=sys.stderr)
        outcomes = asyncio.run(run_tasks(base_url, tasks, concurrency=a.concurrency, timeout_s=a.timeout,
                                         repeat=a.repeat, progress=print_progress))
    env["load_after"] = loadavg()
    env["total_s"] = time.monotonic() - started
    out: Path = a.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    report = out / "patterns-quality.md"
    report.write_text(render(outcomes, env))
    (out / "patterns-quality.json").write_text(json.dumps(as_json(outcomes, env), indent=1, default=str) + "\n")
    return Run(outcomes, report)


def main(argv: list[str] | None = None) -> int:
    try:
        r = run(argv)
    except LaunchError as exc:
        print(f"patterns-quality: a process failed to start: {exc}", file=sys.stderr)
        return 1
    print(f"\n{headline(r.outcomes)}")
    for t in targets(r.outcomes):
        print(f"  {'met ' if t.met else 'MISS'}  {t.what}: {t.measured}")
    print(f"\nreport: {r.report}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
