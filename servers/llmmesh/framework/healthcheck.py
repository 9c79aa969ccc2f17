"""A health probe for container healthchecks: exit 0 only when the process is SERVING.

    python -m llmmesh.framework.healthcheck [--port N] [--service NAME] [--host H] [--timeout S]
    python -m llmmesh.framework.healthcheck --port 8090 --http /healthz     # an HTTP component

gRPC (grpc.health.v1): the port defaults to LLMMESH_PORT (the port this container's
`llmmesh-serve` listens on), so the image's HEALTHCHECK needs no arguments; `--service ''` (the
default) asks about the whole server. `--http PATH` instead expects 200 from GET PATH (the gateway).
With LLMMESH_TLS_CERT/KEY/CA set (mutual TLS), the probe presents that certificate, as Envoy does.
Exit codes: 0 SERVING, 1 anything else (NOT_SERVING while draining, unknown service, unreachable).
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.error
import urllib.request

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from llmmesh.framework.tls import client_ssl_context, sync_channel
from llmmesh.settings import ServiceTlsSettings, SettingsError
from llmmesh.topology.description import MONOLITH_PORT


def check(host: str, port: int, service: str = "", timeout_s: float = 2.0,
          tls: ServiceTlsSettings | None = None) -> tuple[bool, str]:
    """(serving?, what was seen) for one Health/Check call (over mutual TLS when `tls` is on)."""
    with sync_channel(f"{host}:{port}", tls or ServiceTlsSettings()) as channel:
        try:
            resp = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout_s, wait_for_ready=False
            )
        except grpc.RpcError as exc:
            return False, f"{exc.code().name}: {exc.details()}"
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)
    return resp.status == health_pb2.HealthCheckResponse.SERVING, status


def check_http(host: str, port: int, path: str, timeout_s: float = 2.0,
               tls: ServiceTlsSettings | None = None) -> tuple[bool, str]:
    """(200?, what was seen) for one GET, never through an HTTP(S)_PROXY from the environment;
    https with our client certificate when `tls` is on."""
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
    scheme = "http"
    if tls is not None and tls.enabled:
        handlers.append(urllib.request.HTTPSHandler(context=client_ssl_context(tls)))
        scheme = "https"
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(f"{scheme}://{host}:{port}{path}", timeout=timeout_s) as resp:
            return resp.status == 200, f"HTTP {resp.status}"
    except urllib.error.HTTPError as exc:
        return False, f"HTTP {exc.code}"
    except OSError as exc:
        return False, f"unreachable: {exc}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llmmesh.framework.healthcheck", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=None, help="default: $LLMMESH_PORT, else 50051")
    parser.add_argument("--service", default="", help="gRPC service name; empty: the whole server")
    parser.add_argument("--http", metavar="PATH", help="probe GET PATH over HTTP instead (expects 200)")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds")
    args = parser.parse_args(argv)
    try:
        tls = ServiceTlsSettings.from_env(os.environ)
    except SettingsError as exc:
        print(f"healthcheck: {exc}", file=sys.stderr)
        return 1
    port = args.port
    if port is None:
        raw = os.environ.get("LLMMESH_PORT", "").strip() or str(MONOLITH_PORT)
        if not raw.isdigit():
            print(f"healthcheck: LLMMESH_PORT={raw!r} is not a port", file=sys.stderr)
            return 1
        port = int(raw)
    if args.http is not None:
        path = args.http if args.http.startswith("/") else "/" + args.http
        serving, seen = check_http(args.host, port, path, args.timeout, tls)
        target = f"http://{args.host}:{port}{path}"
    else:
        serving, seen = check(args.host, port, args.service, args.timeout, tls)
        target = f"{args.host}:{port}" + (f" {args.service}" if args.service else "")
    print(f"{target}: {seen}", file=sys.stdout if serving else sys.stderr)
    return 0 if serving else 1


if __name__ == "__main__":
    raise SystemExit(main())
