"""Patterns benchmark: judge latency, and a jury run in parallel against the same jurors run one
after another.

The simulator answers every grading prompt with the same ~20-word JSON verdict at a fixed token
delay, so model time dominates, as it does with a real model. *Parallel* is one JuryService.Evaluate
call with a panel of N jurors (the service grades them at once). *Sequential* is the same N
gradings as N JudgeService.Evaluate calls, each waiting for the previous one (same model, same
criterion, same prompt and schema as the juror's). Both go through the ingress over gRPC. The
simulator serves concurrent requests at full speed, as a backend with spare parallel capacity
would (several GPUs, or Ollama with OLLAMA_NUM_PARALLEL >= N).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from dataclasses import dataclass, field

import grpc
from bench_common import configure_sim, percentile

from llmmesh.judge.v1 import judge_service_pb2 as judge_pb2
from llmmesh.judge.v1 import judge_service_pb2_grpc as judge_grpc
from llmmesh.jury.v1 import jury_service_pb2 as jury_pb2
from llmmesh.jury.v1 import jury_service_pb2_grpc as jury_grpc
from llmmesh.launcher.up import Mesh

CRITERIA = ("factual", "clarity", "relevance", "helpfulness")
VERDICT = {"reasoning": "the answer names the right city, it is short and it is exactly what the question asks "
                        "for with nothing missing", "score": 4}
QUESTION = {"question": "What is the capital of France?", "answer": "Paris.", "ground_truth": "Paris"}


@dataclass
class PatternsResult:
    token_delay_ms: int
    verdict_tokens: int
    judge_latencies_s: list[float] = field(default_factory=list)
    judge_concurrency: int = 0
    judge_throughput_rps: float = 0.0
    judge_errors: int = 0
    # panel size -> wall times (s) of each repetition
    parallel_s: dict[int, list[float]] = field(default_factory=dict)
    sequential_s: dict[int, list[float]] = field(default_factory=dict)

    def speedup(self, n: int) -> float:
        return statistics.median(self.sequential_s[n]) / statistics.median(self.parallel_s[n])


def juror(i: int) -> jury_pb2.Juror:
    return jury_pb2.Juror(name=f"juror-{i + 1}", criterion=CRITERIA[i % len(CRITERIA)])


async def run(mesh: Mesh, token_delay_ms: int = 20, panels: tuple[int, ...] = (1, 2, 4, 8), reps: int = 5,
              judge_calls: int = 30, judge_concurrency: int = 8, judge_window_s: float = 4.0) -> PatternsResult:
    configure_sim(mesh, f"token_delay_ms={token_delay_ms}",
                  [{"match": "Criterion:", "response": json.dumps(VERDICT)}])
    result = PatternsResult(token_delay_ms, len(json.dumps(VERDICT).split()))
    async with grpc.aio.insecure_channel(mesh.ingress) as channel:
        judge = judge_grpc.JudgeServiceStub(channel)
        jury = jury_grpc.JuryServiceStub(channel)

        async def one_judge(criterion: str = "factual") -> judge_pb2.EvaluateResponse:
            resp = await judge.Evaluate(judge_pb2.EvaluateRequest(**QUESTION, judge_type=criterion), timeout=60)
            if resp.score != VERDICT["score"]:
                raise RuntimeError(f"unexpected judge score {resp.score}")
            return resp

        async def parallel(n: int) -> float:
            t0 = time.perf_counter()
            resp = await jury.Evaluate(jury_pb2.EvaluateRequest(**QUESTION, panel=[juror(i) for i in range(n)]),
                                       timeout=60)
            if len(resp.verdicts) != n or resp.failed_jurors:
                raise RuntimeError(f"jury: {len(resp.verdicts)} verdicts, failed {list(resp.failed_jurors)}")
            return time.perf_counter() - t0

        async def sequential(n: int) -> float:
            t0 = time.perf_counter()
            for i in range(n):
                await one_judge(juror(i).criterion)
            return time.perf_counter() - t0

        # Warm-up: connections, the model "loaded" on the simulator, every code path once.
        await one_judge()
        await parallel(2)

        print(f"patterns: judge latency, {judge_calls} calls one at a time", file=sys.stderr)
        for _ in range(judge_calls):
            t0 = time.perf_counter()
            await one_judge()
            result.judge_latencies_s.append(time.perf_counter() - t0)

        print(f"patterns: judge throughput, {judge_concurrency} concurrent callers for {judge_window_s:g} s",
              file=sys.stderr)
        done = 0
        deadline = time.perf_counter() + judge_window_s
        t0 = time.perf_counter()

        async def caller() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                try:
                    await one_judge()
                    done += 1
                except (grpc.aio.AioRpcError, RuntimeError):
                    result.judge_errors += 1

        await asyncio.gather(*(caller() for _ in range(judge_concurrency)))
        result.judge_concurrency = judge_concurrency
        result.judge_throughput_rps = done / (time.perf_counter() - t0)

        for n in panels:
            result.parallel_s[n], result.sequential_s[n] = [], []
            for rep in range(reps):
                # Alternate which goes first, so drift on the machine hits both alike.
                order = (parallel, sequential) if rep % 2 == 0 else (sequential, parallel)
                for fn in order:
                    (result.parallel_s if fn is parallel else result.sequential_s)[n].append(await fn(n))
            print(f"patterns: panel of {n}: parallel {statistics.median(result.parallel_s[n]) * 1000:.0f} ms, "
                  f"sequential {statistics.median(result.sequential_s[n]) * 1000:.0f} ms "
                  f"(x{result.speedup(n):.2f})", file=sys.stderr)
    return result


def render(r: PatternsResult) -> list[str]:
    lat = [x * 1000 for x in r.judge_latencies_s]
    out = [
        f"Simulator: every grading answered with the same {r.verdict_tokens}-word JSON verdict at "
        f"`token_delay_ms={r.token_delay_ms}`, so one grading is ~{r.verdict_tokens * r.token_delay_ms} ms of "
        "model time. gRPC through the ingress.",
        "",
        "| judge | value |",
        "|---|---:|",
        f"| latency p50 (one at a time, {len(lat)} calls) | {percentile(lat, 50):.0f} ms |",
        f"| latency p95 | {percentile(lat, 95):.0f} ms |",
        f"| overhead over model time, p50 | {percentile(lat, 50) - r.verdict_tokens * r.token_delay_ms:+.0f} ms |",
        f"| throughput, {r.judge_concurrency} concurrent callers | {r.judge_throughput_rps:.1f} req/s |",
        f"| errors | {r.judge_errors} |",
        "",
        "Jury: *parallel* = one `JuryService.Evaluate` with N jurors; *sequential* = the same N gradings as N "
        "`JudgeService.Evaluate` calls one after another. Medians of "
        f"{len(next(iter(r.parallel_s.values()), []))} alternating repetitions.",
        "",
        "| jurors | parallel (ms) | sequential (ms) | speed-up | parallel vs. one grading |",
        "|---:|---:|---:|---:|---:|",
    ]
    one = percentile(lat, 50)
    for n in r.parallel_s:
        p, s = statistics.median(r.parallel_s[n]) * 1000, statistics.median(r.sequential_s[n]) * 1000
        out.append(f"| {n} | {p:.0f} | {s:.0f} | **x{s / p:.2f}** | x{p / one:.2f} |")
    return out
