"""Where does an inference process spend its CPU per relayed token, and what would removing it buy?

An experiment, not product code: it runs the inference service in a child process with parts of its
per-token path swapped for alternatives by monkeypatching (a local copy; the repository's code is
not changed), drives each variant with the same load, and reports the child's CPU time per token.

  ./scripts/bench-inference --variants          # writes docs/bench/inference-variants.md

Variants (combinable with '+'):
  baseline       the code as it is (aiohttp backend streams split by hand, orjson per line, the
                 servicer coalescing waiting deltas into one message)
  httpx          the backend path before aiohttp, pinned: httpx/httpcore/h11 `aiter_lines` (pure-Python
                 parser, ~5 generator layers per chunk) and `json` per line
  readline       aiohttp's StreamReader iterated by line instead of iter_any + our own split
  nointerceptors grpc.aio server built without the four interceptors (upper bound of what
                 flattening their per-message async-generator layers could save)

Load: one simulator (token delay 0) and 64 concurrent streams of 256 tokens straight at the child's
gRPC port, no Envoy. CPU from /proc/<pid>/stat.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import os
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import httpx
from bench_common import LOCAL, ROOT, cpu_model, cpu_seconds, free_port, loadavg, machine_busy_seconds
from inference_load import MATCH

from llmmesh.common.v1 import common_pb2
from llmmesh.inference.v1 import inference_service_pb2 as pb
from llmmesh.inference.v1 import inference_service_pb2_grpc as pb_grpc
from llmmesh.launcher.probes import grpc_serving

VARIANTS = ("baseline", "httpx", "readline", "nointerceptors")
PATCHES = {"nointerceptors", "httpx", "readline"}


# ---- the child: one inference-only server with the variant's patches ------------------------------

def _patch_nointerceptors() -> None:
    from llmmesh.framework import server

    make = server.grpc.aio.server

    def without(interceptors: Any = None, **kwargs: Any) -> Any:
        return make(**kwargs)

    server.grpc.aio.server = without  # type: ignore[assignment]


def _patch_httpx() -> None:
    """The backend path as it was before aiohttp, pinned: httpx `aiter_lines` and `json` per line."""
    import json

    from llmmesh.inference import protocols, transport
    from llmmesh.inference.failures import BackendFailure

    clients: dict[int, httpx.AsyncClient] = {}

    @asynccontextmanager
    async def stream(self: transport.Transport, backend: Any, path: str,
                     body: dict[str, Any]) -> AsyncIterator[AsyncIterator[str]]:
        http = clients.get(id(self))
        if http is None:
            http = clients[id(self)] = httpx.AsyncClient(
                timeout=httpx.Timeout(5.0, read=60.0), limits=httpx.Limits(max_connections=512,
                                                                            max_keepalive_connections=512),
                trust_env=False)
        url, headers = self._target(backend, path)
        try:
            async with http.stream("POST", url, json=body, headers=headers) as resp:
                if resp.status_code != 200:
                    raise BackendFailure(backend.name, f"HTTP {resp.status_code}")

                async def lines() -> AsyncIterator[str]:
                    async for line in resp.aiter_lines():
                        yield line

                yield lines()
        except httpx.TransportError as exc:
            raise BackendFailure(backend.name, f"transport error ({exc})") from None

    def json_line(self: protocols.Adapter, backend: str, line: str) -> dict[str, Any]:
        doc = json.loads(line)
        if "error" in doc:
            raise BackendFailure(backend, "error in stream")
        return doc

    close = transport.Transport.close

    async def close_both(self: transport.Transport) -> None:
        http = clients.pop(id(self), None)
        if http is not None:
            await http.aclose()
        await close(self)

    transport.Transport.stream = stream  # type: ignore[method-assign]
    transport.Transport.close = close_both  # type: ignore[method-assign]
    protocols.Adapter.json_line = json_line  # type: ignore[method-assign]


def _patch_readline() -> None:
    """aiohttp's own line splitting (`StreamReader` iterated by line) in place of iter_any + split."""
    from llmmesh.inference import transport

    async def lines(backend: Any, resp: Any) -> AsyncIterator[str]:
        async for raw in resp.content:
            yield raw.rstrip(b"\r\n").decode(errors="replace")

    transport._lines = lines  # type: ignore[assignment]


def serve_child(variant: str, port: int, sim_url: str) -> None:
    os.environ.update({
        "LLMMESH_BACKENDS": f"sim={sim_url}", "LLMMESH_DEFAULT_MODEL": "smollm2:135m", "LLMMESH_EGRESS_URL": "",
        "LLMMESH_LOG_LEVEL": "WARNING", "LLMMESH_DRAIN_DELAY_S": "0.1", "LLMMESH_HOST": LOCAL,
    })
    parts = set(variant.split("+")) - {"baseline"}
    if "nointerceptors" in parts:
        _patch_nointerceptors()
    if "httpx" in parts:
        _patch_httpx()
    if "readline" in parts:
        _patch_readline()
    from llmmesh.framework import main as serve_main
    from llmmesh.settings import Settings

    settings = dataclasses.replace(Settings.from_env(), services=("inference",), port=port, metrics_port=None)
    asyncio.run(serve_main.serve(settings))


# ---- the driver ---------------------------------------------------------------------------------

async def ttft_probe(port: int, sim_url: str, requests: int, tokens: int) -> tuple[float, float]:
    """One stream at a time, alternating: median TTFT (ms) of the simulator called directly and of
    the same request through the variant."""
    request = pb.GenerateRequest(prompt=f"{MATCH}: go", options=common_pb2.GenerationOptions(max_tokens=tokens))
    body = {"model": "smollm2:135m", "prompt": f"{MATCH}: go", "stream": True, "options": {"num_predict": tokens}}
    direct: list[float] = []
    relayed: list[float] = []
    async with (httpx.AsyncClient(trust_env=False, timeout=30) as http,
                grpc.aio.insecure_channel(f"{LOCAL}:{port}") as ch):
        stub = pb_grpc.InferenceServiceStub(ch)
        for _ in range(requests):
            t0 = time.perf_counter()
            first = -1.0
            async with http.stream("POST", sim_url + "/api/generate", json=body) as resp:
                async for _line in resp.aiter_lines():
                    first = time.perf_counter() - t0 if first < 0 else first
            direct.append(first)
            t0 = time.perf_counter()
            first = -1.0
            async for _msg in stub.Generate(request, timeout=30):
                first = time.perf_counter() - t0 if first < 0 else first
            relayed.append(first)
    return statistics.median(direct) * 1000, statistics.median(relayed) * 1000


@dataclasses.dataclass
class Outcome:
    tps: float
    us_per_token: float
    server_cores: float
    client_cores: float
    others: float
    tokens_per_message: float
    ttft_direct_ms: float = 0.0
    ttft_relayed_ms: float = 0.0


async def load(port: int, streams: int, tokens: int, window_s: float, server_pid: int) -> Outcome:
    request = pb.GenerateRequest(prompt=f"{MATCH}: go", options=common_pb2.GenerationOptions(max_tokens=tokens))
    counts = [0, 0]  # tokens (from done.output_tokens), delta messages
    async with grpc.aio.insecure_channel(f"{LOCAL}:{port}") as ch:
        stub = pb_grpc.InferenceServiceStub(ch)

        async def worker(deadline: float) -> None:
            while time.perf_counter() < deadline:
                async for msg in stub.Generate(request, timeout=60):
                    if msg.WhichOneof("event") == "delta":
                        counts[1] += 1
                    elif msg.WhichOneof("event") == "done":
                        counts[0] += msg.done.output_tokens

        s0, c0, m0 = cpu_seconds(server_pid), cpu_seconds(os.getpid()), machine_busy_seconds()
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(t0 + window_s) for _ in range(streams)))
        wall = time.perf_counter() - t0
        s1, c1, m1 = cpu_seconds(server_pid), cpu_seconds(os.getpid()), machine_busy_seconds()
    return Outcome(tps=counts[0] / wall, us_per_token=(s1 - s0) / max(1, counts[0]) * 1e6,
                   server_cores=(s1 - s0) / wall, client_cores=(c1 - c0) / wall,
                   others=(m1 - m0) / wall,  # whole machine; the simulator is folded in below
                   tokens_per_message=counts[0] / max(1, counts[1]))


def start_variant(variant: str, sim_url: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    child = subprocess.Popen([sys.executable, __file__, "serve", variant, str(port), sim_url],
                             stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        try:
            if grpc_serving(port):
                return child, port
        except grpc.RpcError:
            pass
        if child.poll() is not None or time.monotonic() > deadline:
            stop(child)
            raise RuntimeError(f"variant {variant}: the server did not start")
        time.sleep(0.1)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def measure(variant: str, child: subprocess.Popen[bytes], port: int, sim_url: str, sim_pid: int,
            args: argparse.Namespace, rep: int) -> Outcome:
    sim0 = cpu_seconds(sim_pid)
    t0 = time.perf_counter()
    o = asyncio.run(load(port, args.streams, args.tokens, args.window, child.pid))
    sim_cores = (cpu_seconds(sim_pid) - sim0) / (time.perf_counter() - t0)
    o.others = max(0.0, o.others - o.server_cores - o.client_cores - sim_cores)
    o.ttft_direct_ms, o.ttft_relayed_ms = asyncio.run(ttft_probe(port, sim_url, args.probe_requests, 8))
    print(f"  {variant:<32} rep {rep + 1}: {o.tps:8.0f} tok/s  server {o.server_cores:.2f} cores "
          f"{o.us_per_token:6.1f} us/token  tokens/msg {o.tokens_per_message:5.1f}  "
          f"client {o.client_cores:.2f}  others {o.others:.2f}  1-stream TTFT "
          f"{o.ttft_relayed_ms - o.ttft_direct_ms:+.2f} ms", file=sys.stderr)
    return o


def render(results: dict[str, list[Outcome]], args: argparse.Namespace, load_before: str) -> str:
    def med(variant: str, attr: str) -> float:
        return statistics.median(getattr(o, attr) for o in results[variant])

    base = med("baseline", "us_per_token")
    lines = [
        "# Inference relay: per-token CPU by variant",
        "",
        f"- **Date**: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}; {len(os.sched_getaffinity(0))} "
        f"CPUs ({cpu_model()}); load average {load_before} before, {loadavg()} after.",
        "- **How**: `./scripts/bench-inference --variants` (`scripts/bench/relay_variants.py`). One inference-only "
        "process per variant, parts of its per-token path monkeypatched in that process only (the repository's "
        "code is unchanged); one simulator with token delay 0; "
        f"{args.streams} concurrent streams of {args.tokens} tokens straight at its gRPC port, no Envoy; "
        f"{args.reps} x {args.window:g} s after a {args.warmup:g} s warm-up, variants interleaved (all servers "
        "up side by side, order rotating per repetition); medians. *µs/token* = the server's "
        "CPU time / tokens relayed; *tokens per CPU-s* = what it could relay with a whole core. After each "
        f"repetition, {args.probe_requests} single streams of 8 tokens alternate between the simulator directly and "
        "the variant: *added by the process* is the difference of their median TTFTs (idle service, one stream).",
        "",
        "| variant | tokens/s | server CPU (cores) | µs CPU/token | vs baseline | tokens per CPU-s | "
        "tokens per message | client CPU | others CPU | 1-stream TTFT direct (ms) | added by the process (ms) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for v in results:
        us = med(v, "us_per_token")
        lines.append(f"| {v} | {med(v, 'tps'):,.0f} | {med(v, 'server_cores'):.2f} | {us:.1f} | "
                     f"{us / base:.2f}x | {1e6 / us:,.0f} | {med(v, 'tokens_per_message'):.1f} | "
                     f"{med(v, 'client_cores'):.2f} | {med(v, 'others'):.2f} | {med(v, 'ttft_direct_ms'):.2f} | "
                     f"{statistics.median(o.ttft_relayed_ms - o.ttft_direct_ms for o in results[v]):+.2f} |")
    lines += [
        "",
        "What each variant swaps (sketches that measure a cost, not patches to apply as they are):",
        "",
        "- *nointerceptors*: `llmmesh/framework/server.py` `create_server` installs four interceptors; for a "
        "server stream each adds three async-generator layers per message (`interceptors/base.py` `_wrap` "
        "`unary_stream` and `_iterate`, plus the interceptor's own `stream`), and `interceptors/metrics.py` "
        "increments a Prometheus counter per message. Removing them all is the upper bound of what one flat "
        "per-stream wrapper (begin/per-item/end hooks called from a single generator) could save.",
        "- *httpx*: the backend path as it was before `llmmesh/inference/transport.py` moved to aiohttp, pinned "
        "in the script: httpx `aiter_lines` (httpcore + the pure-Python h11 parser, several generator layers per "
        "chunk, one HTTP chunk per token) and `json.loads` per line in the adapters (now orjson).",
        "- *readline*: `transport._lines` iterates aiohttp's `StreamReader` by line (`readline`) instead of "
        "`iter_any` chunks split on newlines by hand.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        serve_child(argv[1], int(argv[2]), argv[3])
        return 0
    p = argparse.ArgumentParser(prog="scripts/bench-inference --variants", description=(__doc__ or "").split("\n")[0])
    p.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated; combine patches with '+'")
    p.add_argument("--streams", type=int, default=64)
    p.add_argument("--tokens", type=int, default=256)
    p.add_argument("--window", type=float, default=2.5)
    p.add_argument("--warmup", type=float, default=0.7)
    p.add_argument("--reps", type=int, default=4)
    p.add_argument("--probe-requests", type=int, default=60, help="single-stream TTFT probes per repetition")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "bench" / "inference-variants.md")
    args = p.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for v in variants:
        unknown = set(v.split("+")) - PATCHES - {"baseline"}
        if unknown:
            p.error(f"unknown variant part(s) {sorted(unknown)}; known: baseline, {', '.join(sorted(PATCHES))}")
    if "baseline" not in variants:
        variants.insert(0, "baseline")
    load_before = loadavg()
    sim_port = free_port()
    sim_url = f"http://{LOCAL}:{sim_port}"
    sim = subprocess.Popen([sys.executable, "-m", "llmmesh.simulator.main", "--host", LOCAL, "--port", str(sim_port),
                            "--token-delay-ms", "0", "--log-level", "WARNING", "--name", "bench"],
                           stdin=subprocess.DEVNULL)
    results: dict[str, list[Outcome]] = {}
    children: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    try:
        with httpx.Client(base_url=sim_url, timeout=5.0, trust_env=False) as c:
            deadline = time.monotonic() + 30
            while True:
                try:
                    c.get("/api/tags").raise_for_status()
                    break
                except httpx.HTTPError:
                    if sim.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("the simulator did not start") from None
                    time.sleep(0.1)
            words = " ".join(f"w{i}" for i in range(args.tokens))
            c.put("/_sim/scripts", json=[{"match": MATCH, "response": words}]).raise_for_status()
        # Every variant's server runs side by side (idle unless loaded), so that repetitions can
        # interleave with a rotating order and drift or outside load hits all variants alike.
        for v in variants:
            children[v] = start_variant(v, sim_url)
        for v, (child, port) in children.items():
            asyncio.run(load(port, args.streams, args.tokens, args.warmup, child.pid))
            results[v] = []
        for rep in range(args.reps):
            for v in variants[rep % len(variants):] + variants[:rep % len(variants)]:
                child, port = children[v]
                results[v].append(measure(v, child, port, sim_url, sim.pid, args, rep))
    finally:
        for child, _ in children.values():
            stop(child)
        stop(sim)
    report = render(results, args, load_before)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    print(report)
    print(f"written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
