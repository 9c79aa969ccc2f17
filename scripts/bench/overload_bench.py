"""Overload benchmark: offered load beyond capacity with a small per-backend concurrency limit.

The inference service runs with `LLMMESH_MAX_INFLIGHT_PER_BACKEND` small (default here: 4) over one
simulator answering at a paced rate, so capacity is known: about limit / (one generation's time)
requests per second, measured first with a closed loop at exactly the limit. Then requests arrive
open-loop (Poisson, as independent clients do) at multiples of that capacity, each a gRPC Generate
through the ingress. The admission queue is off here (`LLMMESH_QUEUE_MAX_LENGTH=0`; the admission
benchmark measures it on): beyond the limit the service must refuse at once with RESOURCE_EXHAUSTED
(and `RetryInfo`), the accepted requests keep their normal latency and the refusals are fast, so a
client can back off or go elsewhere.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

import grpc
from bench_common import configure_sim, percentile

from llmmesh.common.v1 import common_pb2
from llmmesh.inference.v1 import inference_service_pb2 as pb
from llmmesh.inference.v1 import inference_service_pb2_grpc as pb_grpc
from llmmesh.launcher.up import Mesh

OK, EXHAUSTED = "OK", "RESOURCE_EXHAUSTED"


@dataclass
class Level:
    multiple: float
    offered_rps: float
    codes: Counter[str] = field(default_factory=Counter)
    ok_s: list[float] = field(default_factory=list)
    refused_s: list[float] = field(default_factory=list)
    window_s: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.codes.values())

    def share(self, code: str) -> float:
        return self.codes[code] / self.total if self.total else 0.0

    @property
    def goodput(self) -> float:
        return self.codes[OK] / self.window_s if self.window_s else 0.0


@dataclass
class OverloadResult:
    limit: int
    tokens: int
    token_delay_ms: int
    capacity_rps: float
    unloaded_s: list[float] = field(default_factory=list)
    levels: list[Level] = field(default_factory=list)


def service_env(limit: int) -> dict[str, str]:
    return {"LLMMESH_MAX_INFLIGHT_PER_BACKEND": str(limit), "LLMMESH_QUEUE_MAX_LENGTH": "0"}


async def run(mesh: Mesh, limit: int, tokens: int = 16, token_delay_ms: int = 20,
              multiples: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0), window_s: float = 6.0,
              seed: int = 7) -> OverloadResult:
    configure_sim(mesh, f"token_delay_ms={token_delay_ms}")
    rng = random.Random(seed)
    request = pb.GenerateRequest(prompt="overload", options=common_pb2.GenerationOptions(max_tokens=tokens))
    async with grpc.aio.insecure_channel(mesh.ingress) as channel:
        stub = pb_grpc.InferenceServiceStub(channel)

        async def one() -> tuple[str, float]:
            t0 = time.perf_counter()
            try:
                last = None
                async for ev in stub.Generate(request, timeout=60):
                    last = ev
                code = OK if last is not None and last.WhichOneof("event") == "done" else "NO_DONE"
            except grpc.aio.AioRpcError as exc:
                code = exc.code().name
            return code, time.perf_counter() - t0

        for _ in range(5):
            await one()
        unloaded = [(await one())[1] for _ in range(10)]

        # Capacity: a closed loop of exactly `limit` callers never exceeds the limit.
        done = 0
        deadline = time.perf_counter() + 4.0
        t0 = time.perf_counter()

        async def closed() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                if (await one())[0] == OK:
                    done += 1

        await asyncio.gather(*(closed() for _ in range(limit)))
        capacity = done / (time.perf_counter() - t0)
        result = OverloadResult(limit, tokens, token_delay_ms, capacity, unloaded)
        print(f"overload: limit {limit} per backend, capacity {capacity:.1f} req/s "
              f"(one request {statistics.median(unloaded) * 1000:.0f} ms unloaded)", file=sys.stderr)

        for m in multiples:
            level = Level(m, m * capacity)
            tasks: list[asyncio.Task[tuple[str, float]]] = []
            start = time.perf_counter()
            next_at = start
            while True:
                next_at += rng.expovariate(level.offered_rps)
                if next_at - start >= window_s:
                    break
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
                tasks.append(asyncio.create_task(one()))
            level.window_s = window_s
            for code, seconds in await asyncio.gather(*tasks):
                level.codes[code] += 1
                (level.ok_s if code == OK else level.refused_s if code == EXHAUSTED else []).append(seconds)
            result.levels.append(level)
            print(f"  x{m:g} ({level.offered_rps:.1f} req/s offered): {dict(level.codes)}; ok p50 "
                  f"{_ms(level.ok_s, 50)} ms, refused p50 {_ms(level.refused_s, 50)} ms", file=sys.stderr)
            await asyncio.sleep(0.5)  # let the last accepted requests finish before the next level
    return result


def _ms(values: list[float], q: float) -> str:
    return f"{percentile(values, q) * 1000:.1f}" if values else "-"


def render(r: OverloadResult) -> list[str]:
    out = [
        f"`LLMMESH_MAX_INFLIGHT_PER_BACKEND={r.limit}`, one simulator at `token_delay_ms={r.token_delay_ms}`, "
        f"{r.tokens} tokens per request: one request takes {statistics.median(r.unloaded_s) * 1000:.0f} ms "
        f"unloaded, and the measured capacity (closed loop of {r.limit} callers) is **{r.capacity_rps:.1f} req/s**. "
        f"Requests then arrive open-loop (Poisson) at multiples of it for {r.levels[0].window_s:g} s each: gRPC "
        "Generate through the ingress; latency of an accepted request is to its `done` event, of a refused one "
        "to its status.",
        "",
        "| offered | req/s offered | requests | OK | RESOURCE_EXHAUSTED | other | goodput (req/s) | OK p50 (ms) | "
        "OK p95 (ms) | refused p50 (ms) | refused p95 (ms) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for lv in r.levels:
        other = lv.total - lv.codes[OK] - lv.codes[EXHAUSTED]
        out.append(f"| x{lv.multiple:g} | {lv.offered_rps:.1f} | {lv.total} | {lv.share(OK):.0%} | "
                   f"{lv.share(EXHAUSTED):.0%} | {other} | {lv.goodput:.1f} | {_ms(lv.ok_s, 50)} | "
                   f"{_ms(lv.ok_s, 95)} | "
                   f"{_ms(lv.refused_s, 50)} | {_ms(lv.refused_s, 95)} |")
    return out
