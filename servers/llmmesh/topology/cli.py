"""`llmmesh-envoy`: render the Envoy bootstrap for processes on loopback or for containers.

    llmmesh-envoy --shape monolith --backend a=http://127.0.0.1:11434 --out envoy.yaml
    llmmesh-envoy --write-compose-examples     # refresh envoy/compose-*.yaml
    llmmesh-envoy --compose --secure tls --cors-origin https://app.example.com --out envoy/site-monolith.yaml
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from llmmesh.env_values import web_origin
from llmmesh.settings import IngressSettings, SettingsError
from llmmesh.topology.description import ADMIN_PORT, EGRESS_PORT, GATEWAY, INGRESS_PORT, MONOLITH_PORT, Shape
from llmmesh.topology.envoy_parts import Endpoint
from llmmesh.topology.params import Backend, RenderParams
from llmmesh.topology.presets import COMPOSE_BACKENDS, Security, compose_params, local_params
from llmmesh.topology.render import EXAMPLES_DIR, render_yaml, write_compose_examples
from llmmesh.topology.tls_flags import add_tls_flags, tls_from_flags


def _endpoint(text: str) -> Endpoint:
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def _replicas(text: str) -> tuple[str, tuple[Endpoint, ...]]:
    name, sep, eps = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected NAME=HOST:PORT[,HOST:PORT...], got {text!r}")
    return name.strip(), tuple(_endpoint(e) for e in eps.split(","))


def _backend(text: str) -> Backend:
    try:
        return Backend.parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _origin(text: str) -> str:
    try:
        return web_origin(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="llmmesh-envoy", description="Render the llmmesh Envoy bootstrap.")
    p.add_argument("--shape", type=Shape, choices=list(Shape), default=Shape.MONOLITH)
    p.add_argument("--backend", type=_backend, action="append", default=[],
                   metavar="[NAME=]http(s)://HOST:PORT[/PATH][#ollama|#openai|#anthropic][;OPTION=…]",
                   help="egress backend, same syntax as LLMMESH_BACKENDS (repeatable)")
    p.add_argument("--compose", action="store_true",
                   help="container variant: bind 0.0.0.0, services by compose name, container descriptor path")
    p.add_argument("--ingress-port", type=int, default=INGRESS_PORT)
    p.add_argument("--admin-port", type=int, default=ADMIN_PORT)
    p.add_argument("--egress-port", type=int, default=EGRESS_PORT)
    p.add_argument("--services-host", default="127.0.0.1", help="host of the local service processes")
    p.add_argument("--monolith-port", type=int, default=MONOLITH_PORT)
    p.add_argument("--gateway-port", type=int, default=GATEWAY.port,
                   help="port of the local gateway process (OpenAI API, playground); 0 leaves it out")
    p.add_argument("--replicas", type=_replicas, action="append", default=[],
                   metavar="NAME=HOST:PORT[,HOST:PORT...]", help="endpoints of one service (repeatable)")
    p.add_argument("--descriptor", help="descriptor set path as Envoy sees it")
    p.add_argument("--hc-interval", type=float, help="health-check interval in seconds (services and backends)")
    add_tls_flags(p)
    p.add_argument("--secure", type=Security, choices=[Security.TLS, Security.MTLS],
                   help="with --compose: the certificates where compose.secure.yaml (tls) or also "
                        "compose.mtls.yaml (mtls) and the Kubernetes overlays mount them")
    p.add_argument("--cors-origin", type=_origin, action="append", default=None, metavar="ORIGIN",
                   help="a browser origin (https://host[:port]) that may call the ingress cross-origin "
                        "(repeatable; default: $LLMMESH_CORS_ORIGINS, else none)")
    p.add_argument("--out", help="output file (default: stdout)")
    p.add_argument("--write-compose-examples", action="store_true",
                   help=f"rewrite the committed compose configs under {EXAMPLES_DIR}")
    return p


def params_from_args(args: argparse.Namespace) -> RenderParams:
    secure = args.secure is not None
    if secure and not args.compose:
        raise ValueError("--secure names container paths: it needs --compose")
    if secure and any(f is not None for f in (args.tls_cert, args.mtls_cert, args.mtls_ca)):
        raise ValueError("--secure sets the certificates itself: leave out --tls-*/--mtls-*")
    origins = tuple(args.cors_origin) if args.cors_origin is not None else IngressSettings.from_env().cors_origins
    if args.compose:
        params = compose_params(args.shape, args.backend or COMPOSE_BACKENDS, security=args.secure or Security.NONE)
        if args.replicas:
            params = replace(params, service_endpoints={**params.service_endpoints, **dict(args.replicas)})
    else:
        params = local_params(
            args.shape,
            args.backend,
            services_host=args.services_host,
            monolith_port=args.monolith_port,
            replicas=dict(args.replicas),
            gateway_port=args.gateway_port or None,
        )
    params = replace(params, ingress_port=args.ingress_port, admin_port=args.admin_port, egress_port=args.egress_port)
    if args.descriptor:
        params = replace(params, descriptor_path=args.descriptor)
    if args.hc_interval:
        params = replace(params, service_hc_interval_s=args.hc_interval, backend_hc_interval_s=args.hc_interval)
    params = replace(params, cors_origins=origins)
    if secure:
        return params
    ingress_tls, upstream_tls = tls_from_flags(args)
    return replace(params, ingress_tls=ingress_tls, upstream_tls=upstream_tls)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.write_compose_examples:
        for path in write_compose_examples():
            print(f"wrote {path}", file=sys.stderr)
        return 0
    try:
        text = render_yaml(params_from_args(args))
    except (ValueError, SettingsError) as e:
        parser.error(str(e))
    if args.out:
        Path(args.out).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
