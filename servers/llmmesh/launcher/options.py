"""`./scripts/up` (python -m llmmesh.launcher.up): start a backend, the mesh (monolith or one process
per service), the HTTP gateway (OpenAI API, playground) and Envoy, print where to call, and stop
everything cleanly on Ctrl-C or SIGTERM.

Security, all optional: `--api-keys FILE` (or LLMMESH_API_KEYS_FILE) turns API keys on — the
launcher then writes a fresh internal service key for this run (`<state-dir>/service.key`, mode
0600) so pattern services can call inference on their callers' behalf; `--tls-cert/--tls-key`
serve the ingress over TLS; `--mtls-ca/--mtls-cert/--mtls-key` put mutual TLS between Envoy and
every service (one certificate for the mesh: services serve it and present it as clients, Envoy
presents it too), and the launcher's own readiness probes use it as well. `--cors-origin ORIGIN`
(or LLMMESH_CORS_ORIGINS) lets pages on that origin call the ingress from a browser.

This module holds what to start (UpOptions) and the command line that fills it in."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from llmmesh.env_values import web_origin
from llmmesh.settings import IngressSettings, ServiceTlsSettings, SettingsError
from llmmesh.topology.description import (
    ADMIN_PORT,
    EGRESS_PORT,
    GATEWAY,
    INGRESS_PORT,
    INTERNAL_PORT,
    MONOLITH_METRICS_PORT,
    MONOLITH_PORT,
    SERVICES,
    Shape,
)
from llmmesh.topology.params import IngressTls
from llmmesh.topology.tls_flags import add_tls_flags, tls_files, tls_from_flags

EMBEDDED_BACKEND_PORT = 11435
# The local redis-server of `--redis` (shared limits, budgets and response cache).
LOCAL_REDIS_PORT = 6379


@dataclass(frozen=True)
class UpOptions:
    backend: str = ""  # "", sim, llama, ollama
    shape: Shape = Shape.MONOLITH
    ingress_port: int = INGRESS_PORT
    admin_port: int = ADMIN_PORT
    egress_port: int = EGRESS_PORT
    # Envoy's mesh-internal gRPC listener, rendered in the microservices shape only: the gateway's
    # MCP server reaches the pattern processes through it (the monolith hosts them all itself).
    internal_port: int = INTERNAL_PORT
    grpc_port: int = MONOLITH_PORT
    metrics_port: int = MONOLITH_METRICS_PORT
    backend_port: int = EMBEDDED_BACKEND_PORT
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
    ingress_tls: IngressTls | None = None
    # Mutual TLS between Envoy and the services (and among them); None: plaintext on loopback.
    service_tls: ServiceTlsSettings | None = None
    # Start a local redis-server on this port and point every service at it (LLMMESH_REDIS_URL);
    # None: no Redis (each process keeps its own state, unless LLMMESH_REDIS_URL names one).
    redis_port: int | None = None
    # Browser origins allowed to call the ingress cross-origin (Envoy's CORS policy); empty: none.
    cors_origins: tuple[str, ...] = ()


def parse_args(argv: list[str] | None) -> UpOptions:
    p = argparse.ArgumentParser(prog="scripts/up", description=(__doc__ or "").rsplit("\n\n", 1)[0])
    p.add_argument("--backend", choices=["sim", "llama", "ollama"], default="",
                   help="force a backend (default: LLMMESH_BACKENDS, else a local Ollama, else llama.cpp)")
    p.add_argument("--shape", choices=[s.value for s in Shape], default=Shape.MONOLITH.value)
    p.add_argument("--replicas", action="append", default=[], metavar="SERVICE=N",
                   help="microservices shape: run N replicas of SERVICE")
    p.add_argument("--ingress-port", type=int, default=INGRESS_PORT)
    p.add_argument("--admin-port", type=int, default=ADMIN_PORT)
    p.add_argument("--egress-port", type=int, default=EGRESS_PORT)
    p.add_argument("--internal-port", type=int, default=INTERNAL_PORT,
                   help="microservices shape: Envoy's internal gRPC listener (the gateway's way to the patterns)")
    p.add_argument("--grpc-port", type=int, default=MONOLITH_PORT)
    p.add_argument("--metrics-port", type=int, default=MONOLITH_METRICS_PORT)
    p.add_argument("--gateway-port", type=int, default=GATEWAY.port,
                   help="port of the HTTP gateway (OpenAI API, playground) and its /metrics")
    p.add_argument("--backend-port", type=int, default=EMBEDDED_BACKEND_PORT,
                   help="port of the embedded backend (sim/llama)")
    p.add_argument("--sims", type=int, default=1, help="with --backend sim: how many simulator backends")
    p.add_argument("--state-dir", type=Path, default=Path(".llmmesh"))
    p.add_argument("--api-keys", type=Path, default=os.environ.get("LLMMESH_API_KEYS_FILE") or None, metavar="FILE",
                   help="API key file (llmmesh-keys add …); default: $LLMMESH_API_KEYS_FILE, else no authentication")
    p.add_argument("--redis", nargs="?", type=int, const=LOCAL_REDIS_PORT, default=None, metavar="PORT",
                   help=f"start a local redis-server (default port {LOCAL_REDIS_PORT}) that the services share "
                        "their rate limits, token budgets and response cache through")
    p.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                   help="let pages on ORIGIN (http(s)://host[:port]) call the ingress; repeatable "
                        "(default: $LLMMESH_CORS_ORIGINS, comma-separated)")
    add_tls_flags(p)
    a = p.parse_args(argv)
    try:
        origins = (tuple(dict.fromkeys(web_origin(o) for o in a.cors_origin)) if a.cors_origin
                   else IngressSettings.from_env().cors_origins)
    except (ValueError, SettingsError) as e:
        p.error(f"--cors-origin: {e}")
    replicas = {}
    for item in a.replicas:
        name, _, count = item.partition("=")
        if name not in {s.name for s in SERVICES} or not count.isdigit() or int(count) < 1:
            p.error(f"--replicas {item!r}: expected SERVICE=N with a known service and N >= 1")
        replicas[name] = int(count)
    for given in (a.api_keys, *tls_files(a)):
        if given is not None and not Path(given).is_file():
            p.error(f"{given}: no such file")
    try:
        ingress_tls, service_tls = tls_from_flags(a)
    except ValueError as e:
        p.error(str(e))
    return UpOptions(backend=a.backend, shape=Shape(a.shape), ingress_port=a.ingress_port, admin_port=a.admin_port,
                     egress_port=a.egress_port, internal_port=a.internal_port, grpc_port=a.grpc_port,
                     metrics_port=a.metrics_port,
                     backend_port=a.backend_port, sim_count=max(1, a.sims), replicas=replicas,
                     state_dir=a.state_dir, gateway_port=a.gateway_port, api_keys_file=a.api_keys,
                     ingress_tls=ingress_tls, service_tls=service_tls, redis_port=a.redis, cors_origins=origins)
