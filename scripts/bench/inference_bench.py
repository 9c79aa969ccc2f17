"""Inference benchmark: time to first token and throughput through the mesh versus the simulator
called directly, and tokens/s relayed by one inference process. Run it with ./scripts/bench-inference.

Everything runs locally on 127.0.0.1. The launcher starts one Ollama simulator, Envoy (ingress and
egress) and the monolith, exactly as `./scripts/up --backend sim` does, on free ports; the
simulator's token delay is then set to 0 at runtime. A second, inference-only process that calls
the simulator directly (egress bypassed) is started beside it, so the path can be taken apart hop
by hop. Everything is stopped on the way out, whatever happened.

Paths, from the shortest to the whole mesh:
  direct   httpx streaming POST /api/generate -> simulator (NDJSON, one token per line)
  service  gRPC -> inference-only process -> simulator                        (no Envoy)
  egress   gRPC -> monolith's inference port -> Envoy egress -> simulator     (no ingress)
  mesh     gRPC -> Envoy ingress -> monolith -> Envoy egress -> simulator     (as deployed)

The load is in inference_load.py, the report in inference_report.py. The report gives medians over
repetitions. CPU time of every process comes from /proc/<pid>/stat, the machine's total from
/proc/stat ("others" = busy CPU not spent by any process of this benchmark).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import grpc
import httpx
from bench_common import LOCAL, ROOT, bench_mesh, configure_sim, free_port, loadavg, machine, mesh_pids, sim_url
from inference_load import (
    MATCH,
    PATH_INFO,
    RELAY_PROC,
    RPC_TIMEOUT_S,
    Plan,
    Rep,
    Results,
    StreamFn,
    direct_stream,
    grpc_stream,
    measure,
    openai_stream,
)
from inference_report import render

from llmmesh.inference.v1 import inference_service_pb2_grpc as pb_grpc
from llmmesh.launcher.probes import grpc_serving, http_ok
from llmmesh.launcher.procs import Child, LaunchError
from llmmesh.launcher.up import STAGE_SERVICES, Mesh


def envoy_version(binary: str) -> str:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=20,
                             stdin=subprocess.DEVNULL).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    for tok in out.split():
        if tok.count("/") >= 2 and tok[0].isalnum():
            return tok.split("/")[1]
    return "unknown"


async def set_token_delay(http: httpx.AsyncClient, url: str, ms: int) -> None:
    """The simulator's token delay, changed mid-run (its script rules stay)."""
    resp = await http.put(url + "/_sim/faults", json={"spec": f"token_delay_ms={ms}"})
    resp.raise_for_status()



LITELLM_VENV = ROOT / ".bench-venvs" / "litellm"


@contextlib.contextmanager
def litellm_proxy(sim: str, model: str, install: bool) -> Iterator[tuple[str, str] | None]:
    """LiteLLM's proxy (the reference row) in its own virtualenv, pointed at the simulator's
    OpenAI-compatible API; yields its base URL and master key, or None when it is not installed
    (and not to be)."""
    litellm = LITELLM_VENV / "bin" / "litellm"
    if not litellm.exists() and install:
        print(f"installing litellm[proxy] into {LITELLM_VENV} (once)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
        subprocess.run([str(LITELLM_VENV / "bin" / "pip"), "install", "-q", "litellm[proxy]"], check=True)
    if not litellm.exists():
        yield None
        return
    port = free_port()
    config = LITELLM_VENV / "bench-config.yaml"
    config.write_text(f"""model_list:
  - model_name: {model}
    litellm_params: {{model: "openai/{model}", api_base: "{sim}/v1", api_key: "none"}}
litellm_settings: {{telemetry: false, drop_params: true}}
""")
    # No outside network: the cost map is the bundled one; no telemetry, no update checks.
    key = f"sk-bench-{os.urandom(16).hex()}"  # it refuses to start without one
    env = {**os.environ, "LITELLM_MASTER_KEY": key, "LITELLM_LOCAL_MODEL_COST_MAP": "True",
           "LITELLM_TELEMETRY": "False", "LITELLM_LOG": "ERROR", "NO_PROXY": "*"}
    proc = subprocess.Popen([str(litellm), "--config", str(config), "--host", LOCAL, "--port", str(port),
                             "--num_workers", "1"], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://{LOCAL}:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(url + "/health/liveliness", timeout=2, trust_env=False).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            print("litellm proxy did not come up; its row is left out", file=sys.stderr)
            yield None
            return
        yield url, key
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def start_inference_direct(mesh: Mesh) -> tuple[Child, int]:
    """A second, inference-only process that calls the simulator directly (egress bypassed). It is
    started by the mesh's supervisor, so mesh.stop() stops it too."""
    port, metrics_port = free_port(), free_port()
    env = {
        "LLMMESH_BACKENDS": ",".join(mesh.choice.specs),
        "LLMMESH_EGRESS_URL": "",
        "LLMMESH_DEFAULT_MODEL": mesh.choice.default_model,
        "LLMMESH_HOST": LOCAL,
        "LLMMESH_LOG_LEVEL": "WARNING",
        "LLMMESH_DRAIN_DELAY_S": "0.2",
    }
    argv = [sys.executable, "-m", "llmmesh.framework.main", "--services", "inference", "--port", str(port),
            "--metrics-port", str(metrics_port)]
    child = mesh.supervisor.start("inference-direct", argv, env, stage=STAGE_SERVICES)
    mesh.supervisor.wait_ready(child, lambda: grpc_serving(port), 60)
    return child, port


def start_gateway_process(mesh: Mesh) -> tuple[Child, int]:
    """The gateway as a process of its own, calling the monolith over gRPC: the design the monolith's
    in-process gateway replaced, measured beside it."""
    port = free_port()
    env = {"LLMMESH_HOST": LOCAL, "LLMMESH_GATEWAY_PORT": str(port), "LLMMESH_LOG_LEVEL": "WARNING",
           "LLMMESH_INFERENCE_TARGET": f"{LOCAL}:{mesh.options.grpc_port}"}
    child = mesh.supervisor.start("gateway", [sys.executable, "-m", "llmmesh.gateway.main"], env,
                                  stage=STAGE_SERVICES)
    mesh.supervisor.wait_ready(child, lambda: http_ok(f"http://{LOCAL}:{port}/healthz"), 60)
    return child, port


async def bench(mesh: Mesh, plan: Plan, pids: dict[str, int], direct_port: int, gateway_port: int,
                litellm: tuple[str, str] | None = None) -> Results:
    sim = sim_url(mesh)
    results = Results()
    limits = httpx.Limits(max_connections=512, max_keepalive_connections=512)
    timeout = httpx.Timeout(RPC_TIMEOUT_S, connect=5.0)
    async with (contextlib.AsyncExitStack() as stack,
                httpx.AsyncClient(limits=limits, timeout=timeout, trust_env=False) as http,
                grpc.aio.insecure_channel(f"{LOCAL}:{direct_port}") as service_ch,
                grpc.aio.insecure_channel(f"{LOCAL}:{mesh.options.grpc_port}") as egress_ch,
                grpc.aio.insecure_channel(mesh.ingress) as mesh_ch):
        stubs = {"service": pb_grpc.InferenceServiceStub(service_ch),
                 "egress": pb_grpc.InferenceServiceStub(egress_ch),
                 "mesh": pb_grpc.InferenceServiceStub(mesh_ch)}

        def paths(tokens: int, names: tuple[str, ...]) -> dict[str, StreamFn]:
            fns = {"direct": direct_stream(http, sim, mesh.choice.default_model, tokens)}
            fns.update({n: grpc_stream(stub, tokens) for n, stub in stubs.items()})
            return {n: fns[n] for n in names}

        # Every path delivers exactly the requested tokens, one per message, before anything counts.
        for name, one in paths(plan.tokens, tuple(PATH_INFO)).items():
            _, _, n = await one(time.perf_counter() + RPC_TIMEOUT_S)
            if n != plan.tokens:
                raise RuntimeError(f"{name}: got {n} tokens, expected {plan.tokens}")

        def latency_line(name: str, r: Rep) -> str:
            return (f"TTFT p50 {r.p(50):7.2f} ms  p95 {r.p(95):7.2f} ms  {r.tps:7.0f} tok/s  "
                    f"others {r.others():.2f} cores  errors {r.errors}")

        print(f"section 1: TTFT and throughput, {plan.tokens} tokens per stream, {plan.reps} x "
              f"{plan.window_s:g} s per level and path", file=sys.stderr)
        for streams in plan.levels:
            await measure(paths(plan.tokens, tuple(PATH_INFO)), streams, plan.window_s, plan, pids,
                          results.latency, latency_line)

        if plan.paced_delay_ms > 0:
            # Supplement (reported as section 3, run before the relay phase so that it still gets
            # re-runs within the time budget): the same TTFT comparison with streams in flight that
            # are not CPU-bound.
            await set_token_delay(http, sim, plan.paced_delay_ms)
            print(f"section 3: TTFT with paced tokens ({plan.paced_delay_ms} ms per token), {plan.paced_tokens} "
                  "tokens per stream", file=sys.stderr)
            await measure(paths(plan.paced_tokens, ("direct", "mesh")), plan.paced_streams, plan.paced_window_s,
                          plan, pids, results.paced, latency_line,
                          stagger_s=plan.paced_tokens * plan.paced_delay_ms / 1000)
            await set_token_delay(http, sim, 0)

        if plan.door_levels:
            # Section 4: the front doors, all on the same simulator (its OpenAI-compatible API for the
            # OpenAI paths, its Ollama API behind the mesh, as deployed).
            model = mesh.choice.default_model

            web: httpx.AsyncClient | aiohttp.ClientSession = http
            if plan.door_client == "aiohttp":
                web = await stack.enter_async_context(aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=RPC_TIMEOUT_S)))

            def doors() -> dict[str, StreamFn]:
                fns = {"openai-direct": openai_stream(web, sim + "/v1", model, plan.door_tokens),
                       "grpc-mesh": grpc_stream(stubs["mesh"], plan.door_tokens),
                       "openai-mesh": openai_stream(web, f"http://{mesh.ingress}/v1", model, plan.door_tokens),
                       "openai-hosted": openai_stream(web, f"http://{LOCAL}:{mesh.gateway_port}/v1", model,
                                                      plan.door_tokens),
                       "openai-gateway": openai_stream(web, f"http://{LOCAL}:{gateway_port}/v1", model,
                                                       plan.door_tokens)}
                if litellm:
                    url, key = litellm
                    fns["litellm"] = openai_stream(web, url, model, plan.door_tokens,
                                                   {"authorization": f"Bearer {key}"})
                return fns

            for name, one in doors().items():
                _, _, n = await one(time.perf_counter() + RPC_TIMEOUT_S)
                if n != plan.door_tokens:
                    raise RuntimeError(f"{name}: got {n} tokens, expected {plan.door_tokens}")

            def door_line(name: str, r: Rep) -> str:
                return f"TTFT p50 {r.p(50):7.2f} ms  {r.sps:6.1f} streams/s  errors {r.errors}"

            print(f"section 4: front doors, {plan.door_tokens} tokens per stream", file=sys.stderr)
            for streams in plan.door_levels:
                await measure(doors(), streams, plan.door_window_s, plan, pids, results.doors, door_line)

        def relay_line(name: str, r: Rep) -> str:
            proc = RELAY_PROC[name]
            return (f"{r.tps:7.0f} tok/s  {proc} {r.cores(proc):.2f} cores, {r.us_per_token(proc):.1f} us/token  "
                    f"client {r.cores('client'):.2f}  others {r.others():.2f}  errors {r.errors}")

        print(f"section 2: relay, {plan.relay_tokens} tokens per stream straight at an inference process's "
              "gRPC port", file=sys.stderr)
        for streams in plan.relay_streams:
            await measure(paths(plan.relay_tokens, ("egress", "service")), streams, plan.relay_window_s, plan,
                          pids, results.relay, relay_line)

    return results




def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def parse_args(argv: list[str] | None) -> tuple[Plan, Path]:
    p = argparse.ArgumentParser(prog="scripts/bench-inference", description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--levels", type=_ints, default=(1, 16, 64), help="phase 1 concurrent streams (default 1,16,64)")
    p.add_argument("--tokens", type=int, default=128, help="phase 1 tokens per stream (default 128)")
    p.add_argument("--window", type=float, default=1.5, help="phase 1 seconds per repetition (default 1.5)")
    p.add_argument("--reps", type=int, default=3, help="repetitions per level and path (default 3)")
    p.add_argument("--warmup", type=float, default=0.5, help="warm-up seconds per level and path (default 0.5)")
    p.add_argument("--relay-streams", type=_ints, default=(64,), help="phase 2 concurrent streams (default 64)")
    p.add_argument("--relay-tokens", type=int, default=256, help="phase 2 tokens per stream (default 256)")
    p.add_argument("--relay-window", type=float, default=3.0, help="phase 2 seconds per repetition (default 3)")
    p.add_argument("--paced-delay-ms", type=int, default=10,
                   help="phase 3 simulator token delay, 0 skips phase 3 (default 10)")
    p.add_argument("--paced-streams", type=int, default=16, help="phase 3 concurrent streams (default 16)")
    p.add_argument("--paced-tokens", type=int, default=32, help="phase 3 tokens per stream (default 32)")
    p.add_argument("--paced-window", type=float, default=2.5, help="phase 3 seconds per repetition (default 2.5)")
    p.add_argument("--door-levels", type=_ints, default=(1, 16),
                   help="section 4 (front doors) concurrent streams, empty skips it (default 1,16)")
    p.add_argument("--door-tokens", type=int, default=32, help="section 4 tokens per stream (default 32)")
    p.add_argument("--door-window", type=float, default=1.5, help="section 4 seconds per repetition (default 1.5)")
    p.add_argument("--litellm", choices=("auto", "install", "skip"), default="auto",
                   help="section 4's LiteLLM proxy row: if installed in .bench-venvs/litellm (auto), installing "
                        "it there first (install), or not (skip)")
    p.add_argument("--door-client", choices=("httpx", "aiohttp"), default="httpx",
                   help="section 4's HTTP client for the OpenAI paths: httpx (default), or aiohttp, light enough "
                        "that the direct baseline is bound by the backend, not by the client")
    p.add_argument("--max-others", type=float, default=0.5,
                   help="re-run a repetition if other processes used more cores than this (default 0.5)")
    p.add_argument("--retries", type=int, default=1, help="re-runs allowed per repetition (default 1)")
    p.add_argument("--budget", type=float, default=100.0,
                   help="no more re-runs once the run is this many seconds old (default 100)")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "bench" / "inference.md")
    a = p.parse_args(argv)
    if max(a.relay_streams) > 64:
        p.error("--relay-streams above 64 exceeds the service's default LLMMESH_MAX_INFLIGHT_PER_BACKEND")
    plan = Plan(levels=a.levels, tokens=a.tokens, window_s=a.window, reps=max(1, a.reps), warmup_s=a.warmup,
                relay_streams=a.relay_streams, relay_tokens=a.relay_tokens, relay_window_s=a.relay_window,
                paced_streams=a.paced_streams, paced_tokens=a.paced_tokens, paced_delay_ms=a.paced_delay_ms,
                paced_window_s=a.paced_window, max_others=a.max_others, retries=max(0, a.retries),
                budget_s=a.budget, door_levels=a.door_levels, door_tokens=a.door_tokens,
                door_window_s=a.door_window, litellm=a.litellm,
                door_client=a.door_client)
    return plan, a.out


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(argv: list[str] | None = None) -> tuple[Results, Plan, Path]:
    """Run the benchmark as the command line says, write its report; return what it measured."""
    plan, out_path = parse_args(argv)
    envoy_bin = Path(sys.executable).parent / "envoy"
    env = {**machine(), "envoy": envoy_version(str(envoy_bin) if envoy_bin.exists() else "envoy")}
    if float(env["busy_before"]) > 0.5:
        print(f"warning: the machine is already {env['busy_before']} cores busy; figures will be depressed",
              file=sys.stderr)
    with bench_mesh() as mesh:
        pids = mesh_pids(mesh)
        pids["inference"] = pids.pop("llmmesh")
        words = " ".join(f"w{i}" for i in range(max(plan.tokens, plan.relay_tokens)))
        # Zero token delay for the whole instance (the launcher starts it with 5 ms), and one script
        # rule giving bench prompts exactly the requested one-word tokens (unscripted answers are short).
        configure_sim(mesh, "token_delay_ms=0", [{"match": MATCH, "response": words}])
        child, direct_port = start_inference_direct(mesh)
        pids["inference-direct"] = child.proc.pid
        child, gateway_port = start_gateway_process(mesh)
        pids["gateway"] = child.proc.pid
        env["processes"] = ", ".join(c.name for c in mesh.supervisor.children)
        wants_litellm = bool(plan.door_levels) and plan.litellm != "skip"
        with litellm_proxy(sim_url(mesh), mesh.choice.default_model, plan.litellm == "install") if wants_litellm \
                else contextlib.nullcontext() as litellm:
            results = asyncio.run(bench(mesh, plan, pids, direct_port, gateway_port, litellm))
    env["load_after"] = loadavg()
    report = render(results, plan, env, (out_path.parent / "inference-variants.md").exists())
    report += f"\nWhole run: {time.monotonic() - plan.started:.0f} s, start-up and shutdown included.\n"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(report)
    print(report)
    print(f"written to {out_path}", file=sys.stderr)
    return results, plan, out_path


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        run(argv)
    except LaunchError as exc:
        print(f"bench-inference: a process failed to start: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
