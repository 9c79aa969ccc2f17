"""REST vs gRPC through the same ingress: the same unary call (chat completion) and the same
streaming call (generate) made both ways.

- gRPC: `InferenceService/CompleteChat` and `InferenceService/Generate` on one grpc.aio channel
  (HTTP/2 to Envoy, which proxies it unchanged).
- REST: `POST /api/v1/inference/chat` (JSON) and `POST /api/v1/inference/generate` (Server-Sent
  Events) with httpx over pooled HTTP/1.1 connections; Envoy's gRPC-JSON transcoder turns them into
  the same gRPC calls.

The simulator answers at once (`token_delay_ms=0`), so what is measured is the protocol path, not
the model. Latency: one call at a time, the two protocols alternating in blocks. Throughput: a
closed loop of N concurrent callers per protocol. CPU time of Envoy and of the inference process is
read from /proc over each throughput window, as milliseconds per request: unlike the client's cost
(Python's httpx vs grpcio's C core), that is what the mesh itself spends on each protocol.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import grpc
import httpx
from bench_common import CpuMeter, configure_sim, mesh_pids, percentile

from llmmesh.common.v1 import common_pb2
from llmmesh.inference.v1 import inference_service_pb2 as pb
from llmmesh.inference.v1 import inference_service_pb2_grpc as pb_grpc
from llmmesh.launcher.up import Mesh

CALLS = ("unary", "stream")
PROTOCOLS = ("grpc", "rest")


@dataclass
class Cell:
    latencies_s: list[float] = field(default_factory=list)
    ttft_s: list[float] = field(default_factory=list)
    rps: float = 0.0
    errors: int = 0
    envoy_ms_per_req: float = 0.0
    inference_ms_per_req: float = 0.0
    client_ms_per_req: float = 0.0
    others_cores: float = 0.0

    def p(self, q: float) -> float:
        return percentile(self.latencies_s, q) * 1000


@dataclass
class ProtocolsResult:
    tokens: int
    concurrency: int
    window_s: float
    cells: dict[tuple[str, str], Cell] = field(default_factory=dict)  # (call, protocol)

    def ratio(self, call: str, what: str) -> float:
        """REST divided by gRPC: latency p50 (`p50`), or throughput (`rps`)."""
        g, r = self.cells[(call, "grpc")], self.cells[(call, "rest")]
        return r.p(50) / g.p(50) if what == "p50" else r.rps / g.rps


async def run(mesh: Mesh, tokens: int = 16, latency_calls: int = 200, block: int = 20, concurrency: int = 16,
              window_s: float = 4.0) -> ProtocolsResult:
    configure_sim(mesh, "token_delay_ms=0")
    result = ProtocolsResult(tokens, concurrency, window_s)
    for call in CALLS:
        for proto in PROTOCOLS:
            result.cells[(call, proto)] = Cell()
    chat_json = {"messages": [{"role": "ROLE_USER", "content": "Say hello"}], "options": {"max_tokens": tokens}}
    gen_json = {"prompt": "Count to five", "options": {"max_tokens": tokens}}
    opts = common_pb2.GenerationOptions(max_tokens=tokens)
    limits = httpx.Limits(max_connections=concurrency * 2, max_keepalive_connections=concurrency * 2)

    async with (grpc.aio.insecure_channel(mesh.ingress) as channel,
                httpx.AsyncClient(base_url=f"http://{mesh.ingress}", limits=limits, timeout=60,
                                  trust_env=False) as http):
        stub = pb_grpc.InferenceServiceStub(channel)

        async def grpc_unary() -> float:
            resp = await stub.CompleteChat(pb.CompleteChatRequest(
                messages=[pb.Message(role=pb.ROLE_USER, content="Say hello")], options=opts), timeout=60)
            if resp.done.output_tokens != tokens:
                raise RuntimeError(f"gRPC chat: {resp.done.output_tokens} tokens")
            return -1.0

        async def rest_unary() -> float:
            r = await http.post("/api/v1/inference/chat", json=chat_json)
            if r.status_code != 200 or r.json()["done"]["output_tokens"] != tokens:
                raise RuntimeError(f"REST chat: HTTP {r.status_code} {r.text[:200]}")
            return -1.0

        async def grpc_stream() -> float:
            t0, ttft, n, done = time.perf_counter(), -1.0, 0, False
            async for ev in stub.Generate(pb.GenerateRequest(prompt="Count to five", options=opts), timeout=60):
                kind = ev.WhichOneof("event")
                if kind == "delta":
                    n += 1
                    if ttft < 0:
                        ttft = time.perf_counter() - t0
                done = done or kind == "done"
            if n != tokens or not done:
                raise RuntimeError(f"gRPC generate: {n} tokens, done={done}")
            return ttft

        async def rest_stream() -> float:
            t0, ttft, n, done = time.perf_counter(), -1.0, 0, False
            async with http.stream("POST", "/api/v1/inference/generate", json=gen_json) as r:
                if r.status_code != 200:
                    raise RuntimeError(f"REST generate: HTTP {r.status_code}")
                async for line in r.aiter_lines():
                    if not line.startswith("data: "):
                        continue
                    ev = json.loads(line[6:])
                    if "delta" in ev:
                        n += 1
                        if ttft < 0:
                            ttft = time.perf_counter() - t0
                    done = done or "done" in ev
            if n != tokens or not done:
                raise RuntimeError(f"REST generate: {n} tokens, done={done}")
            return ttft

        fns: dict[tuple[str, str], Callable[[], Awaitable[float]]] = {
            ("unary", "grpc"): grpc_unary, ("unary", "rest"): rest_unary,
            ("stream", "grpc"): grpc_stream, ("stream", "rest"): rest_stream}
        for fn in fns.values():  # warm-up: connections, transcoder, code paths
            for _ in range(10):
                await fn()

        print(f"rest-vs-grpc: latency, {latency_calls} calls each, one at a time", file=sys.stderr)
        for call in CALLS:
            for start in range(0, latency_calls, block):
                for proto in (PROTOCOLS if (start // block) % 2 == 0 else PROTOCOLS[::-1]):
                    cell = result.cells[(call, proto)]
                    for _ in range(min(block, latency_calls - start)):
                        t0 = time.perf_counter()
                        ttft = await fns[(call, proto)]()
                        cell.latencies_s.append(time.perf_counter() - t0)
                        if ttft >= 0:
                            cell.ttft_s.append(ttft)

        print(f"rest-vs-grpc: throughput, {concurrency} concurrent callers x {window_s:g} s each", file=sys.stderr)
        pids = mesh_pids(mesh)
        for call in CALLS:
            for proto in PROTOCOLS:
                cell = result.cells[(call, proto)]
                meter = CpuMeter({k: v for k, v in pids.items() if k in ("client", "envoy", "llmmesh", "simulator")})
                done = 0
                deadline = time.perf_counter() + window_s

                async def caller(fn: Callable[[], Awaitable[float]], cell: Cell = cell,
                                 deadline: float = deadline) -> None:
                    nonlocal done
                    while time.perf_counter() < deadline:
                        try:
                            await fn()
                            done += 1
                        except (grpc.aio.AioRpcError, httpx.HTTPError, RuntimeError):
                            cell.errors += 1

                meter.start()
                await asyncio.gather(*(caller(fns[(call, proto)]) for _ in range(concurrency)))
                meter.stop()
                cell.rps = done / meter.wall_s
                per = 1000 / max(1, done)
                cell.envoy_ms_per_req = meter.used.get("envoy", 0.0) * per
                cell.inference_ms_per_req = meter.used.get("llmmesh", 0.0) * per
                cell.client_ms_per_req = meter.used.get("client", 0.0) * per
                cell.others_cores = meter.others()
                print(f"  {call:<6} {proto:<4} {cell.rps:7.1f} req/s  p50 {cell.p(50):6.2f} ms  envoy "
                      f"{cell.envoy_ms_per_req:.2f} ms CPU/req  errors {cell.errors}", file=sys.stderr)
    return result


def render(r: ProtocolsResult) -> list[str]:
    out = [
        f"Simulator at `token_delay_ms=0`, {r.tokens} tokens per answer. *unary*: chat completion "
        "(`CompleteChat` / `POST /api/v1/inference/chat`); *stream*: generate (`Generate` / SSE "
        "`POST /api/v1/inference/generate`), latency to the terminal `done` event. Throughput: "
        f"{r.concurrency} concurrent callers, {r.window_s:g} s per cell. CPU per request over the throughput "
        "window, in ms.",
        "",
        "| call | protocol | latency p50 (ms) | p95 (ms) | p99 (ms) | first token p50 (ms) | requests/s | "
        "Envoy CPU/req | inference CPU/req | client CPU/req | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for call in CALLS:
        for proto in PROTOCOLS:
            c = r.cells[(call, proto)]
            ttft = f"{percentile(c.ttft_s, 50) * 1000:.2f}" if c.ttft_s else "-"
            out.append(f"| {call} | {proto} | {c.p(50):.2f} | {c.p(95):.2f} | {c.p(99):.2f} | {ttft} | {c.rps:.0f} | "
                       f"{c.envoy_ms_per_req:.2f} | {c.inference_ms_per_req:.2f} | {c.client_ms_per_req:.2f} | "
                       f"{c.errors} |")
    out += ["", "| call | REST / gRPC latency p50 | REST / gRPC requests/s | REST / gRPC Envoy CPU per request |",
            "|---|---:|---:|---:|"]
    for call in CALLS:
        g, rest = r.cells[(call, "grpc")], r.cells[(call, "rest")]
        envoy = rest.envoy_ms_per_req / g.envoy_ms_per_req if g.envoy_ms_per_req else float("nan")
        out.append(f"| {call} | **x{r.ratio(call, 'p50'):.2f}** | x{r.ratio(call, 'rps'):.2f} | x{envoy:.2f} |")
    return out
