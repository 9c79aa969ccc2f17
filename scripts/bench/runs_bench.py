"""Run store and comparison benchmark: what storing a run costs a judge call, and what a comparison
costs over its slowest model.

1. Store cost. JudgeService.Evaluate over gRPC through the ingress, the simulator answering at once
   (token delay 0, so the mesh's own work is all there is to see), `store` left on (SQLite, the
   embedded default) against `store: false`, alternating call by call. Two ways: *paced* (a 20 ms
   pause after each call, so the background writer's batch lands between calls: the cost on the
   run's own path, the design's claim) and *back to back* (the writer competing with the next call
   for the same CPU). Target: p50 added < 1 ms.
2. Comparison wall time. CompareService.Run over two models, a fast one (2 ms/token) and a slow one
   (20 ms/token), each answering the same ~50-token text, one juror each (the fast model judging,
   2 ms/token), against the slow model's answer alone (InferenceService.CompleteChat of the same
   prompt), alternating. Target: compare / slowest alone <= 1.2.

Standalone (its own mesh on free ports, about a minute with --quick): python scripts/bench/runs_bench.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from dataclasses import dataclass, field

import grpc
from bench_common import bench_mesh, configure_sim, percentile

from llmmesh.compare.v1 import compare_service_pb2 as compare_pb2
from llmmesh.compare.v1 import compare_service_pb2_grpc as compare_grpc
from llmmesh.inference.v1 import inference_service_pb2 as inference_pb2
from llmmesh.inference.v1 import inference_service_pb2_grpc as inference_grpc
from llmmesh.judge.v1 import judge_service_pb2 as judge_pb2
from llmmesh.judge.v1 import judge_service_pb2_grpc as judge_grpc
from llmmesh.launcher.up import Mesh
from llmmesh.runs.v1 import runs_service_pb2 as runs_pb2
from llmmesh.runs.v1 import runs_service_pb2_grpc as runs_grpc

FAST, SLOW = "smollm2:135m", "llama3.2:1b"
PROMPT = "Explain in a few sentences why the sky is blue."
ANSWER = ("Sunlight is made of many colours. As it passes through the air, the short blue waves are scattered by "
          "the molecules of the atmosphere far more than the long red ones, so blue light reaches our eyes from "
          "every direction of the sky, which is why it looks blue during the day.")
VERDICT = {"reasoning": "clear and correct, it names the scattering of short waves", "score": 4}
STORE_TARGET_MS, COMPARE_TARGET = 1.0, 1.2
COMPARE_RULES = [
    {"match": "Criterion:", "response": json.dumps(VERDICT), "fault": "token_delay_ms=2"},
    {"match": PROMPT, "model": SLOW, "response": ANSWER, "fault": "token_delay_ms=20"},
    {"match": PROMPT, "model": FAST, "response": ANSWER, "fault": "token_delay_ms=2"},
]


@dataclass
class StoreCost:
    calls: int
    paced: dict[bool, list[float]] = field(default_factory=lambda: {True: [], False: []})
    back_to_back: dict[bool, list[float]] = field(default_factory=lambda: {True: [], False: []})
    stored: int = 0

    @staticmethod
    def added_ms(cells: dict[bool, list[float]]) -> float:
        return (statistics.median(cells[True]) - statistics.median(cells[False])) * 1000


@dataclass
class CompareCost:
    compare_s: list[float] = field(default_factory=list)
    slowest_s: list[float] = field(default_factory=list)
    answer_tokens: int = 0

    @property
    def ratio(self) -> float:
        return statistics.median(self.compare_s) / statistics.median(self.slowest_s)


@dataclass
class RunsResult:
    store: StoreCost
    compare: CompareCost


async def store_cost(channel: grpc.aio.Channel, calls: int) -> StoreCost:
    judge = judge_grpc.JudgeServiceStub(channel)
    result = StoreCost(calls)

    async def timed(store: bool) -> float:
        request = judge_pb2.EvaluateRequest(question="What is the capital of France?", answer="Paris.", store=store)
        t0 = time.perf_counter()
        await judge.Evaluate(request, timeout=60)
        return time.perf_counter() - t0

    for _ in range(10):  # warm-up: channels, the store's first open and migration
        await timed(True)
        await timed(False)
    for i in range(calls * 2):
        store = i % 2 == 0
        result.paced[store].append(await timed(store))
        await asyncio.sleep(0.02)
    for i in range(calls * 2):
        store = i % 2 == 0
        result.back_to_back[store].append(await timed(store))
    runs, token = runs_grpc.RunsServiceStub(channel), ""
    while True:  # every stored judge run, page by page: the writer kept up with every run
        page = await runs.ListRuns(runs_pb2.ListRunsRequest(pattern="judge", page_size=100, page_token=token),
                                   timeout=30)
        result.stored += len(page.runs)
        if not (token := page.next_page_token):
            return result


async def compare_cost(channel: grpc.aio.Channel, reps: int) -> CompareCost:
    compare = compare_grpc.CompareServiceStub(channel)
    inference = inference_grpc.InferenceServiceStub(channel)
    result = CompareCost()

    async def comparison() -> float:
        t0 = time.perf_counter()
        resp = await compare.Run(compare_pb2.RunRequest(prompt=PROMPT, models=[FAST, SLOW], judges=[FAST],
                                                        criteria=["helpfulness"]), timeout=120)
        result.answer_tokens = max(a.output_tokens for a in resp.answers)
        return time.perf_counter() - t0

    async def slowest_alone() -> float:
        t0 = time.perf_counter()
        await inference.CompleteChat(inference_pb2.CompleteChatRequest(
            model=SLOW, messages=[inference_pb2.Message(role=inference_pb2.ROLE_USER, content=PROMPT)]), timeout=120)
        return time.perf_counter() - t0

    await comparison()
    await slowest_alone()
    for _ in range(reps):
        result.compare_s.append(await comparison())
        result.slowest_s.append(await slowest_alone())
    return result


async def run(mesh: Mesh, calls: int = 150, reps: int = 10) -> RunsResult:
    async with grpc.aio.insecure_channel(mesh.ingress) as channel:
        configure_sim(mesh, "token_delay_ms=0", [{"match": "Criterion:", "response": json.dumps(VERDICT)}])
        store = await store_cost(channel, calls)
        configure_sim(mesh, "", COMPARE_RULES)
        compare = await compare_cost(channel, reps)
    result = RunsResult(store, compare)
    print(f"  store: +{store.added_ms(store.paced):.2f} ms p50 paced, +{store.added_ms(store.back_to_back):.2f} ms "
          f"back to back; compare / slowest alone x{compare.ratio:.2f}", file=sys.stderr)
    return result


def headlines(r: RunsResult) -> list[tuple[str, str, str]]:
    s, c = r.store, r.compare
    return [
        ("storing a run (SQLite), judge latency",
         f"p50 {s.added_ms(s.paced):+.2f} ms ({statistics.median(s.paced[True]) * 1000:.2f} vs. "
         f"{statistics.median(s.paced[False]) * 1000:.2f} ms); back to back {s.added_ms(s.back_to_back):+.2f} ms",
         "the same judge call with `store: false`, alternating"),
        ("a comparison of two models vs. the slowest alone",
         f"x{c.ratio:.2f} ({statistics.median(c.compare_s) * 1000:.0f} vs. {statistics.median(c.slowest_s) * 1000:.0f}"
         " ms p50), a juror per answer included",
         "the slow model's answer alone (CompleteChat)"),
    ]


def render(r: RunsResult) -> list[str]:
    s, c = r.store, r.compare

    def ms(values: list[float], q: float) -> str:
        return f"{percentile(values, q) * 1000:.2f}"

    met = "✅" if s.added_ms(s.paced) < STORE_TARGET_MS else "❌"
    met_c = "✅" if c.ratio <= COMPARE_TARGET else "❌"
    return [
        f"**Store cost.** JudgeService.Evaluate over gRPC through the ingress, the simulator answering at once; "
        f"`store` on (SQLite under the state directory) and `store: false` alternating, {s.calls} calls each, paced "
        f"(20 ms between calls: the background writer's batch lands in between) and back to back. "
        f"Afterwards the store listed {s.stored} judge runs: the {s.calls * 2} stored calls and the 10 of the "
        "warm-up.",
        "",
        "| calls | store | p50 (ms) | p95 (ms) |",
        "|---|---|---:|---:|",
        *(f"| {name} | {'on' if flag else 'off'} | {ms(cells[flag], 50)} | {ms(cells[flag], 95)} |"
          for name, cells in (("paced", s.paced), ("back to back", s.back_to_back)) for flag in (True, False)),
        "",
        f"Added p50: **{s.added_ms(s.paced):+.2f} ms** paced (target < {STORE_TARGET_MS:g} ms {met}), "
        f"{s.added_ms(s.back_to_back):+.2f} ms back to back.",
        "",
        f"**Comparison wall time.** CompareService.Run over {FAST} (2 ms/token) and {SLOW} (20 ms/token), both "
        f"answering the same {c.answer_tokens}-token text, one juror per answer ({FAST} judging helpfulness at "
        f"2 ms/token), against {SLOW}'s answer alone (InferenceService.CompleteChat), alternating, "
        f"{len(c.compare_s)} repetitions.",
        "",
        "| call | p50 (ms) | p95 (ms) |",
        "|---|---:|---:|",
        f"| comparison | {ms(c.compare_s, 50)} | {ms(c.compare_s, 95)} |",
        f"| slowest model alone | {ms(c.slowest_s, 50)} | {ms(c.slowest_s, 95)} |",
        "",
        f"**Comparison / slowest alone: x{c.ratio:.2f}** (target <= {COMPARE_TARGET:g} {met_c}): the answers run in "
        "parallel and the fast answer's juror runs while the slow answer is still being written.",
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer calls (~1 minute)")
    a = p.parse_args(argv)
    with bench_mesh() as mesh:
        result = asyncio.run(run(mesh, calls=60 if a.quick else 150, reps=5 if a.quick else 10))
    print("\n".join(render(result)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
