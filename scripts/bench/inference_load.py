"""The inference benchmark's load: one stream per path (the simulator over HTTP, or Generate over
gRPC), closed-loop repetitions of N such streams, and the series of repetitions per path and level.

Each repetition is a closed loop: N workers start streams back to back until the window closes,
and streams in flight then finish. TTFT is measured on the client (call started -> first token
received); throughput counts only tokens received inside the window. The paths' repetitions
interleave (the order rotates) so that drift and other load on the machine hit them alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import grpc
import httpx
from bench_common import CpuMeter, percentile

from llmmesh.common.v1 import common_pb2
from llmmesh.inference.v1 import inference_service_pb2 as pb
from llmmesh.inference.v1 import inference_service_pb2_grpc as pb_grpc

# Prompts carrying it get the simulator's scripted answer of exactly the requested tokens.
MATCH = "llmmesh-bench"
RPC_TIMEOUT_S = 60.0

PATH_INFO = {
    "direct": "httpx → simulator",
    "service": "gRPC → inference → simulator",
    "egress": "gRPC → inference → egress → simulator",
    "mesh": "gRPC → ingress → inference → egress → simulator",
}
# Section 4, the front doors: the same simulator over OpenAI's API directly, and through each door.
DOOR_INFO = {
    "openai-direct": "httpx → simulator's /v1/chat/completions (SSE)",
    "grpc-mesh": "gRPC → ingress → inference → egress → simulator",
    "openai-mesh": "httpx → ingress → monolith (the gateway, calling inference in-process) → egress → simulator "
                   "(OpenAI SSE), as deployed",
    "openai-hosted": "the same without the ingress: httpx → the monolith's gateway port → egress → simulator",
    "openai-gateway": "httpx → a gateway process of its own → gRPC → monolith → egress → simulator, no ingress "
                      "either: the other design, the gateway as a separate process (the split deployments' hop)",
    "litellm": "httpx → LiteLLM proxy → simulator's /v1/chat/completions",
}
# Which process relays tokens on each gRPC path.
RELAY_PROC = {"service": "inference-direct", "egress": "inference", "mesh": "inference"}

# One stream: (seconds to first token, tokens received inside the window, tokens received in all).
StreamFn = Callable[[float], Awaitable[tuple[float, int, int]]]


@dataclass(frozen=True)
class Plan:
    levels: tuple[int, ...]
    tokens: int
    window_s: float
    reps: int
    warmup_s: float
    relay_streams: tuple[int, ...]
    relay_tokens: int
    relay_window_s: float
    paced_streams: int
    paced_tokens: int
    paced_delay_ms: int
    paced_window_s: float
    # A repetition during which processes outside the benchmark used more than this many cores is
    # run again (up to `retries` times, while the run is younger than `budget_s`); the least
    # contended attempt is kept.
    max_others: float
    retries: int
    budget_s: float
    door_levels: tuple[int, ...] = (1, 16)
    door_tokens: int = 32
    door_window_s: float = 1.5
    litellm: str = "auto"
    # The OpenAI paths' HTTP client: httpx (the issue's baseline client), or aiohttp, a lighter one
    # that leaves the direct baseline bound by the backend rather than by the client.
    door_client: str = "httpx"
    started: float = field(default_factory=time.monotonic)


@dataclass
class Rep:
    ttfts: list[float]
    window_tokens: int
    total_tokens: int
    window_s: float
    cpu: CpuMeter  # CPU seconds per process over the whole repetition (window and tail)
    errors: int

    @property
    def tps(self) -> float:
        return self.window_tokens / self.window_s

    @property
    def sps(self) -> float:
        """Streams completed per second (closed loop: those that started inside the window)."""
        return len(self.ttfts) / self.window_s

    def p(self, q: float) -> float:
        return percentile(self.ttfts, q) * 1000

    def cores(self, name: str) -> float:
        return self.cpu.cores(name)

    def others(self) -> float:
        return self.cpu.others()

    def us_per_token(self, name: str) -> float:
        return self.cpu.used.get(name, 0.0) / max(1, self.total_tokens) * 1e6


@dataclass
class Series:
    path: str
    streams: int
    reps: list[Rep] = field(default_factory=list)
    reruns: int = 0  # repetitions run again because of load from outside the benchmark

    def med(self, fn: Callable[[Rep], float]) -> float:
        return statistics.median(fn(r) for r in self.reps)

    def spread(self, fn: Callable[[Rep], float]) -> tuple[float, float]:
        values = [fn(r) for r in self.reps]
        return min(values), max(values)

    @property
    def errors(self) -> int:
        return sum(r.errors for r in self.reps)

    @property
    def streams_done(self) -> int:
        return sum(len(r.ttfts) for r in self.reps)

    @property
    def p50(self) -> float:
        return self.med(lambda r: r.p(50))

    @property
    def tps(self) -> float:
        return self.med(lambda r: r.tps)


@dataclass
class Results:
    latency: dict[tuple[str, int], Series] = field(default_factory=dict)
    relay: dict[tuple[str, int], Series] = field(default_factory=dict)
    paced: dict[tuple[str, int], Series] = field(default_factory=dict)
    doors: dict[tuple[str, int], Series] = field(default_factory=dict)


def direct_stream(client: httpx.AsyncClient, url: str, model: str, tokens: int) -> StreamFn:
    body = {"model": model, "prompt": f"{MATCH}: say something", "stream": True, "options": {"num_predict": tokens}}

    async def one(deadline: float) -> tuple[float, int, int]:
        t0 = time.perf_counter()
        ttft = -1.0
        in_window = total = 0
        async with client.stream("POST", url + "/api/generate", json=body) as resp:
            if resp.status_code != 200:
                raise RuntimeError(f"simulator answered HTTP {resp.status_code}")
            async for line in resp.aiter_lines():
                if not line:
                    continue
                doc = json.loads(line)
                if doc.get("response"):
                    now = time.perf_counter()
                    if ttft < 0:
                        ttft = now - t0
                    total += 1
                    in_window += now <= deadline
                if "error" in doc:
                    raise RuntimeError(f"simulator error: {doc['error']}")
                if doc.get("done"):
                    break
        return ttft, in_window, total

    return one


def grpc_stream(stub: pb_grpc.InferenceServiceStub, tokens: int) -> StreamFn:
    """Generate over gRPC. A delta message carries one token or, when the relay coalesced what
    queued up behind the reader, several: the bench answer's tokens are one word each, so words count."""
    request = pb.GenerateRequest(prompt=f"{MATCH}: say something",
                                 options=common_pb2.GenerationOptions(max_tokens=tokens))

    async def one(deadline: float) -> tuple[float, int, int]:
        t0 = time.perf_counter()
        ttft = -1.0
        in_window = total = 0
        done = False
        async for msg in stub.Generate(request, timeout=RPC_TIMEOUT_S):
            kind = msg.WhichOneof("event")
            if kind == "delta":
                now = time.perf_counter()
                if ttft < 0:
                    ttft = now - t0
                n = len(msg.delta.text.split())
                total += n
                in_window += n if now <= deadline else 0
            elif kind == "done":
                done = True
                if msg.done.output_tokens != total:
                    raise RuntimeError(f"{total} tokens received but output_tokens={msg.done.output_tokens}")
            else:
                raise RuntimeError(f"error event: {msg.error.message}")
        if not done:
            raise RuntimeError("stream ended without a done event")
        return ttft, in_window, total

    return one


def openai_stream(client: httpx.AsyncClient | aiohttp.ClientSession, base_url: str, model: str, tokens: int,
                  headers: dict[str, str] | None = None) -> StreamFn:
    """A streamed chat completion from any OpenAI-compatible server (the simulator itself, the
    mesh's front door, another proxy): SSE `chat.completion.chunk`s, words counted as tokens. The
    client is httpx (the default) or aiohttp, a lighter one (`--door-client`)."""
    body = {"model": model, "stream": True, "max_tokens": tokens,
            "messages": [{"role": "user", "content": f"{MATCH}: say something"}]}
    url = base_url + "/chat/completions"

    async def one(deadline: float) -> tuple[float, int, int]:
        t0 = time.perf_counter()
        ttft = -1.0
        in_window = total = 0
        async with contextlib.aclosing(_sse_data(client, url, body, headers)) as data:
            async for payload in data:
                if payload == "[DONE]":
                    return ttft, in_window, total
                doc = json.loads(payload)
                if "error" in doc:
                    raise RuntimeError(f"error event: {doc['error']}")
                for choice in doc.get("choices") or ():
                    n = len(((choice.get("delta") or {}).get("content") or "").split())
                    if n:
                        now = time.perf_counter()
                        if ttft < 0:
                            ttft = now - t0
                        total += n
                        in_window += n if now <= deadline else 0
        raise RuntimeError("stream ended without data: [DONE]")

    return one


async def _sse_data(client: httpx.AsyncClient | aiohttp.ClientSession, url: str, body: dict[str, Any],
                    headers: dict[str, str] | None) -> AsyncIterator[str]:
    """The `data:` payloads of one SSE response; the caller stops at [DONE] (the body's end is not
    awaited, and the connection is then closed rather than reused: the same for every path)."""
    if isinstance(client, aiohttp.ClientSession):
        async with client.post(url, json=body, headers=headers) as resp:
            if resp.status != 200:
                raise RuntimeError(f"{url} answered HTTP {resp.status}: {(await resp.read())[:200]!r}")
            async for raw in resp.content:
                if raw.startswith(b"data: "):
                    yield raw[6:].decode().rstrip("\r\n")
        return
    async with client.stream("POST", url, json=body, headers=headers) as resp:
        if resp.status_code != 200:
            raise RuntimeError(f"{url} answered HTTP {resp.status_code}: {(await resp.aread())[:200]!r}")
        async for line in resp.aiter_lines():
            if line.startswith("data: "):
                yield line[6:]


async def run_rep(one: StreamFn, streams: int, window_s: float, pids: dict[str, int], stagger_s: float = 0.0) -> Rep:
    """One closed-loop window. With `stagger_s`, worker i starts i/streams of it late, so that paced
    streams do not all start (and end, and restart) in lockstep."""
    ttfts: list[float] = []
    counts = [0, 0, 0]  # tokens in window, tokens in all, errors
    cpu = CpuMeter(pids)
    cpu.start()
    deadline = time.perf_counter() + window_s

    async def worker(i: int) -> None:
        if stagger_s:
            await asyncio.sleep(stagger_s * i / streams)
        while time.perf_counter() < deadline:
            try:
                ttft, in_window, total = await one(deadline)
            except (grpc.RpcError, httpx.HTTPError, aiohttp.ClientError, RuntimeError) as exc:
                counts[2] += 1
                if counts[2] <= 3:
                    print(f"  stream failed: {type(exc).__name__}: {str(exc)[:200]}", file=sys.stderr)
                await asyncio.sleep(0.05)
                continue
            ttfts.append(ttft)
            counts[0] += in_window
            counts[1] += total

    await asyncio.gather(*(worker(i) for i in range(streams)))
    cpu.stop()
    return Rep(ttfts, counts[0], counts[1], window_s, cpu, counts[2])


async def measure(fns: dict[str, StreamFn], streams: int, window_s: float, plan: Plan, pids: dict[str, int],
                  into: dict[tuple[str, int], Series], describe: Callable[[str, Rep], str],
                  stagger_s: float = 0.0) -> None:
    """Warm every path up, then run plan.reps interleaved repetitions of each (order rotating)."""
    names = list(fns)
    for name in names:
        await run_rep(fns[name], streams, plan.warmup_s, pids, stagger_s)
        into[(name, streams)] = Series(name, streams)
    for rep in range(plan.reps):
        for name in names[rep % len(names):] + names[:rep % len(names)]:
            series = into[(name, streams)]
            r = await run_rep(fns[name], streams, window_s, pids, stagger_s)
            print(f"  {streams:>3} streams  {name:<8} rep {rep + 1}: {describe(name, r)}", file=sys.stderr)
            for _ in range(plan.retries):
                if r.others() <= plan.max_others or time.monotonic() - plan.started > plan.budget_s:
                    break
                series.reruns += 1
                again = await run_rep(fns[name], streams, window_s, pids, stagger_s)
                print(f"  {streams:>3} streams  {name:<8} rep {rep + 1} again (outside load): "
                      f"{describe(name, again)}", file=sys.stderr)
                r = min(r, again, key=Rep.others)
            series.reps.append(r)
