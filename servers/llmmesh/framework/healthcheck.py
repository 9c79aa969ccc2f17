"""A gRPC health probe for container healthchecks: exit 0 only when the service is SERVING.

    python -m llmmesh.framework.healthcheck [--port N] [--service NAME] [--host H] [--timeout S]

The port defaults to LLMMESH_PORT (the port this container's `llmmesh-serve` listens on), so the
image's HEALTHCHECK needs no arguments; `--service ''` (the default) asks about the whole server.
Exit codes: 0 SERVING, 1 anything else (NOT_SERVING while draining, unknown service, unreachable).
"""

from __future__ import annotations

import argparse
import os
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from llmmesh.topology.description import MONOLITH_PORT


def check(host: str, port: int, service: str = "", timeout_s: float = 2.0) -> tuple[bool, str]:
    """(serving?, what was seen) for one Health/Check call."""
    with grpc.insecure_channel(f"{host}:{port}") as channel:
        try:
            resp = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout_s, wait_for_ready=False
            )
        except grpc.RpcError as exc:
            return False, f"{exc.code().name}: {exc.details()}"
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)
    return resp.status == health_pb2.HealthCheckResponse.SERVING, status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llmmesh.framework.healthcheck", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=None, help="default: $LLMMESH_PORT, else 50051")
    parser.add_argument("--service", default="", help="gRPC service name; empty: the whole server")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds")
    args = parser.parse_args(argv)
    port = args.port
    if port is None:
        raw = os.environ.get("LLMMESH_PORT", "").strip() or str(MONOLITH_PORT)
        if not raw.isdigit():
            print(f"healthcheck: LLMMESH_PORT={raw!r} is not a port", file=sys.stderr)
            return 1
        port = int(raw)
    serving, seen = check(args.host, port, args.service, args.timeout)
    target = f"{args.host}:{port}" + (f" {args.service}" if args.service else "")
    print(f"{target}: {seen}", file=sys.stdout if serving else sys.stderr)
    return 0 if serving else 1


if __name__ == "__main__":
    raise SystemExit(main())
