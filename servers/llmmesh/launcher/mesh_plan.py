"""The mesh `up` is about to start, decided before anything starts: every service process and its
ports, the gateway's port, each process's environment, and the Envoy config routing to them."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, replace
from pathlib import Path

from llmmesh.launcher.backend_choice import BackendChoice
from llmmesh.launcher.options import UpOptions
from llmmesh.settings import ServiceTlsSettings
from llmmesh.topology.description import GATEWAY, SERVICES, Shape
from llmmesh.topology.params import Backend, EnvoyTracing, RenderParams
from llmmesh.topology.presets import REPO_ROOT, local_params

REPLICA_PORT_STRIDE = 100
# The named analysis presets the README's examples use: the local mesh's own, like compose's and k8s's.
DEFAULT_PRESETS_FILE = REPO_ROOT / "deploy" / "presets.yaml"


@dataclass(frozen=True)
class ServiceProcess:
    name: str  # process/log name
    services: str  # --services value
    port: int
    metrics_port: int


def plan_services(opts: UpOptions) -> list[ServiceProcess]:
    """The monolith, or one process per service replica, with their ports."""
    if opts.shape is Shape.MONOLITH:
        return [ServiceProcess("llmmesh", "all", opts.grpc_port, opts.metrics_port)]
    plan = []
    for spec in SERVICES:
        count = opts.replicas.get(spec.name, 1)
        for i in range(count):
            stride = i * REPLICA_PORT_STRIDE
            alloc = opts.port_allocator
            port, metrics = (alloc(), alloc()) if alloc else (spec.port + stride, spec.metrics_port + stride)
            plan.append(ServiceProcess(f"{spec.name}-{i + 1}" if count > 1 else spec.name, spec.name, port, metrics))
    return plan


def plan_gateway_port(opts: UpOptions) -> int:
    if opts.gateway_port is not None:
        return opts.gateway_port
    return opts.port_allocator() if opts.port_allocator else GATEWAY.port


def inference_port(plan: list[ServiceProcess]) -> int:
    return next(p.port for p in plan if p.services in ("all", "inference"))


def service_env(opts: UpOptions, choice: BackendChoice, plan: list[ServiceProcess]) -> dict[str, str]:
    env = {
        "LLMMESH_BACKENDS": ",".join(choice.specs),
        "LLMMESH_EGRESS_URL": f"http://127.0.0.1:{opts.egress_port}",
        "LLMMESH_INFERENCE_TARGET": f"127.0.0.1:{inference_port(plan)}",
        "LLMMESH_DRAIN_DELAY_S": "1.0",
        "LLMMESH_HOST": "127.0.0.1",
        # The run store (SQLite unless LLMMESH_DATABASE_URL is set) lives with up's other state.
        "LLMMESH_STATE_DIR": str(opts.state_dir.resolve()),
    }
    if choice.default_model:
        env["LLMMESH_DEFAULT_MODEL"] = choice.default_model
    if opts.redis_port is not None:
        env["LLMMESH_REDIS_URL"] = f"redis://127.0.0.1:{opts.redis_port}/0"
    # The caller's own LLMMESH_PRESETS_FILE (empty: none) passes through to the services instead.
    if "LLMMESH_PRESETS_FILE" not in os.environ:
        env["LLMMESH_PRESETS_FILE"] = str(DEFAULT_PRESETS_FILE)
    return {**env, **_security_env(opts), **opts.service_env}


def hosts_gateway(opts: UpOptions) -> bool:
    """The monolith serves the gateway itself, its inference calls in-process (llmmesh.gateway.hosted);
    microservices keep it a process of its own (inference may have replicas; the gateway has one port)."""
    return opts.shape is Shape.MONOLITH


def gateway_env(opts: UpOptions, plan: list[ServiceProcess], gateway_port: int) -> dict[str, str]:
    """The gateway's environment: its own process's, or the monolith's additions when it hosts it."""
    env = {**_tls_env(opts), **opts.service_env, "LLMMESH_HOST": "127.0.0.1",
           "LLMMESH_GATEWAY_PORT": str(gateway_port), "LLMMESH_INFERENCE_TARGET": f"127.0.0.1:{inference_port(plan)}"}
    # The MCP server checks keys itself (401 without one) and lists the tools a key's scopes allow;
    # it needs the key file only, never the service key (it forwards its callers' own keys).
    if opts.api_keys_file is not None:
        env["LLMMESH_API_KEYS_FILE"] = str(opts.api_keys_file.resolve())
    # Microservices: the patterns are in processes of their own, all behind Envoy's internal
    # listener; in the monolith the inference target hosts them.
    if opts.shape is Shape.MICROSERVICES:
        env["LLMMESH_PATTERNS_TARGET"] = f"127.0.0.1:{opts.internal_port}"
    if hosts_gateway(opts):
        env["LLMMESH_SERVE_GATEWAY"] = "true"
    return env


def envoy_params(opts: UpOptions, choice: BackendChoice, plan: list[ServiceProcess], gateway_port: int) -> RenderParams:
    replicas: dict[str, list[tuple[str, int]]] = {}
    for p in plan:
        replicas.setdefault(p.services, []).append(("127.0.0.1", p.port))
    params = local_params(
        opts.shape, [Backend.parse(s) for s in choice.specs], monolith_port=opts.grpc_port,
        replicas=replicas if opts.shape is Shape.MICROSERVICES else None, ingress_port=opts.ingress_port,
        admin_port=opts.admin_port, egress_port=opts.egress_port, gateway_port=gateway_port,
        internal_port=opts.internal_port if opts.shape is Shape.MICROSERVICES else None)
    ingress = opts.ingress_tls
    if ingress is not None:
        ingress = replace(ingress, cert_file=_absolute(ingress.cert_file), key_file=_absolute(ingress.key_file))
    # Envoy traces when the OTEL_* variables the services inherit ask for it.
    return replace(params, ingress_tls=ingress, upstream_tls=_mesh_tls(opts), cors_origins=opts.cors_origins,
                   tracing=EnvoyTracing.from_env(os.environ))


def _absolute(path: str) -> str:
    # Children and Envoy may resolve paths from elsewhere than where `up` was started.
    return str(Path(path).resolve())


def _mesh_tls(opts: UpOptions) -> ServiceTlsSettings | None:
    tls = opts.service_tls
    if tls is None or not tls.enabled:
        return None
    return ServiceTlsSettings(_absolute(tls.cert_file), _absolute(tls.key_file), _absolute(tls.ca_file))


def _tls_env(opts: UpOptions) -> dict[str, str]:
    tls = _mesh_tls(opts)
    if tls is None:
        return {}
    return {"LLMMESH_TLS_CERT": tls.cert_file, "LLMMESH_TLS_KEY": tls.key_file, "LLMMESH_TLS_CA": tls.ca_file}


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
