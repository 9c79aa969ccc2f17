"""Response cache benchmark: a judge call repeated, against the same call the first time.

The simulator writes the judge's verdict (~20 words of JSON) at a fixed token delay (20 ms/token,
like a loaded GPU), so the first call's time is model time. The judge samples at temperature 0, so
the same call again is answered by the inference service's response cache: its events replayed,
no backend called. Each repetition asks a question no earlier one asked (a fresh cache key), then
asks it again at once; *first* and *repeat* are both JudgeService.Evaluate over gRPC through the
ingress, measured side by side. The ratio is first / repeat of the medians.

Standalone (its own mesh on free ports, about half a minute): python scripts/bench/cache_bench.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field

import grpc
from bench_common import bench_mesh, configure_sim, percentile

from llmmesh.judge.v1 import judge_service_pb2 as judge_pb2
from llmmesh.judge.v1 import judge_service_pb2_grpc as judge_grpc
from llmmesh.launcher.up import Mesh

VERDICT = {"reasoning": "the answer names the right city, it is short and it is exactly what the question asks "
                        "for with nothing missing", "score": 4}


@dataclass
class CacheResult:
    token_delay_ms: int
    verdict_tokens: int
    first_s: list[float] = field(default_factory=list)
    repeat_s: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return statistics.median(self.first_s) / statistics.median(self.repeat_s)


async def run(mesh: Mesh, token_delay_ms: int = 20, reps: int = 10) -> CacheResult:
    configure_sim(mesh, f"token_delay_ms={token_delay_ms}",
                  [{"match": "Criterion:", "response": json.dumps(VERDICT)}])
    result = CacheResult(token_delay_ms, len(json.dumps(VERDICT).split()))
    async with grpc.aio.insecure_channel(mesh.ingress) as channel:
        judge = judge_grpc.JudgeServiceStub(channel)

        async def timed(request: judge_pb2.EvaluateRequest) -> tuple[float, judge_pb2.EvaluateResponse]:
            t0 = time.perf_counter()
            resp = await judge.Evaluate(request, timeout=60)
            return time.perf_counter() - t0, resp

        await timed(judge_pb2.EvaluateRequest(question="warm-up?", answer="yes"))
        for _ in range(reps):
            request = judge_pb2.EvaluateRequest(question=f"What is the capital of France? ({uuid.uuid4().hex[:8]})",
                                                answer="Paris.", ground_truth="Paris", judge_type="factual")
            first_s, first = await timed(request)
            repeat_s, repeat = await timed(request)
            if (repeat.verdict, repeat.score, repeat.reasoning) != (first.verdict, first.score, first.reasoning):
                raise RuntimeError("the repeated judge call answered differently from the first")
            result.first_s.append(first_s)
            result.repeat_s.append(repeat_s)
    print(f"  judge first {statistics.median(result.first_s) * 1000:.1f} ms, repeat "
          f"{statistics.median(result.repeat_s) * 1000:.1f} ms (p50): x{result.ratio:.1f}", file=sys.stderr)
    return result


def headline(r: CacheResult) -> str:
    return (f"x{r.ratio:.0f} faster ({statistics.median(r.repeat_s) * 1000:.1f} vs. "
            f"{statistics.median(r.first_s) * 1000:.0f} ms p50)")


def render(r: CacheResult) -> list[str]:
    def ms(values: list[float], q: float) -> str:
        return f"{percentile(values, q) * 1000:.1f}"

    return [
        f"One judge call (JudgeService.Evaluate over gRPC through the ingress; a verdict of ~{r.verdict_tokens} "
        f"words at `token_delay_ms={r.token_delay_ms}`), then the same call again: the judge samples at "
        f"temperature 0, so the inference service replays the first answer from its response cache. "
        f"{len(r.first_s)} repetitions, each with a question not asked before.",
        "",
        "| call | p50 (ms) | p95 (ms) |",
        "|---|---:|---:|",
        f"| first (model) | {ms(r.first_s, 50)} | {ms(r.first_s, 95)} |",
        f"| repeat (cache hit) | {ms(r.repeat_s, 50)} | {ms(r.repeat_s, 95)} |",
        "",
        f"**The repeat is x{r.ratio:.1f} faster** (median first / median repeat).",
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--token-delay-ms", type=int, default=20)
    a = p.parse_args(argv)
    with bench_mesh() as mesh:
        result = asyncio.run(run(mesh, a.token_delay_ms, a.reps))
    print("\n".join(render(result)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
