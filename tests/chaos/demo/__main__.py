"""`./scripts/demo` (python -m tests.chaos.demo): start the mesh on two Ollama simulators, as
`./scripts/up --backend sim --sims 2` does but on free ports, then tell its reliability story one
scenario at a time, each checked: the happy path, bad input, backends answering 503, 429 and 500,
a slow client, a backend killed mid-stream, and the metrics that show it all. Every step prints
what it does, the curl or grpcurl command a user could run, and PASS or FAIL. The first FAIL stops
the demo with exit status 1; logs are then kept. About a minute.

It lives beside the chaos drills because it is one: it drives the mesh with their helpers
(tests/chaos/drills.py), as ./scripts/soak does."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import grpc

from llmmesh.launcher.procs import LaunchError
from llmmesh.launcher.up import Mesh
from llmmesh.settings import InferenceSettings
from tests.chaos.demo.context import SIMS, Demo
from tests.chaos.demo.narration import Narrator, ScenarioFailed
from tests.chaos.demo.scenarios import SCENARIOS
from tests.chaos.drills import all_backends_ready, child, sims_mesh

# Every setting at its default: the demo shows the mesh as it ships (quieter logs aside).
SERVICE_ENV = {"LLMMESH_LOG_LEVEL": "WARNING"}


def describe(mesh: Mesh, settings: InferenceSettings, demo_logs: Path) -> str:
    o = mesh.options
    sims = ", ".join(f"{name} localhost:{o.backend_port + i} (pid {child(mesh, f'simulator-{name}').proc.pid})"
                     for i, name in enumerate(SIMS))
    return (f"  ingress      localhost:{o.ingress_port}  (gRPC, REST, Server-Sent Events)\n"
            f"  Envoy admin  localhost:{o.admin_port}  (/clusters, /stats)\n"
            f"  metrics      localhost:{o.metrics_port}/metrics  (the monolith: every service, inference included)\n"
            f"  backends     {sims}: Ollama simulators (fault control API: /_sim/faults), behind the egress Envoy "
            f"localhost:{o.egress_port}\n"
            f"  logs         {demo_logs}/\n"
            f"  inference    {settings.max_attempts} attempts, backoff {settings.backoff_s * 1000:g} ms; circuit opens "
            f"after {settings.breaker_failures} failures for {settings.breaker_open_s:g} s; backends probed every "
            f"{settings.inventory_refresh_s:g} s")


async def run_all(mesh: Mesh, say: Narrator, settings: InferenceSettings) -> bool:
    async with grpc.aio.insecure_channel(mesh.ingress) as channel:
        demo = Demo(mesh, say, settings, channel)
        say.explain("waiting until the inference service sees both backends healthy, with the model loaded")
        try:
            await all_backends_ready(channel)
        except AssertionError as exc:
            say.banner(f"\ndemo: FAILED: the backends did not become ready: {exc}")
            return False
        demo.baseline = demo.metrics()
        for number, scenario in enumerate(SCENARIOS, 1):
            say.step(number, len(SCENARIOS), scenario.title)
            t0 = time.monotonic()
            try:
                await scenario.run(demo)
            except Exception as exc:  # a scenario that misbehaved, or broke: either fails the demo loudly
                reason = str(exc) if isinstance(exc, ScenarioFailed) else f"{type(exc).__name__}: {exc}"
                say.failed(scenario.title, reason)
                say.banner(f"\ndemo: FAILED at step {number} of {len(SCENARIOS)} ({scenario.title}): {reason}")
                return False
            say.passed(scenario.title, time.monotonic() - t0)
    return True


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scripts/demo", description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--keep", action="store_true", help="leave the mesh running after the scenarios; Ctrl-C stops it")
    a = p.parse_args(argv)
    # SIGTERM behaves like Ctrl-C: the mesh is stopped on the way out.
    signal.signal(signal.SIGTERM, _interrupt)
    say = Narrator()
    # What the services will read: this environment and SERVICE_ENV (the launcher passes both on).
    settings = InferenceSettings.from_env({**os.environ, **SERVICE_ENV})
    state = Path(tempfile.mkdtemp(prefix="llmmesh-demo-"))
    t0 = time.monotonic()
    say.banner("llmmesh demo: starting the mesh as `./scripts/up --backend sim --sims 2` runs it, on free ports")
    ok = False
    try:
        with sims_mesh(state, sim_count=2, service_env=SERVICE_ENV) as mesh:
            say.banner(describe(mesh, settings, state / "logs"))
            ok = asyncio.run(run_all(mesh, say, settings))
            if ok:
                say.banner(f"\ndemo: all {len(SCENARIOS)} scenarios passed in {time.monotonic() - t0:.0f} s")
            if a.keep:
                say.banner("the mesh is still running (commands above work as printed); Ctrl-C stops it")
                while True:
                    time.sleep(1)
    except LaunchError as exc:
        print(f"demo: FAILED: the mesh did not start: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print("\ndemo: stopped", file=sys.stderr)
    finally:
        if ok:
            shutil.rmtree(state, ignore_errors=True)
        else:
            print(f"demo: logs kept in {state / 'logs'}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
