"""`llmmesh-serve`: run the services named in LLMMESH_SERVICES (or --services) in one process."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import signal

from llmmesh.common import event_loop
from llmmesh.framework import json_logging, tracing
from llmmesh.framework.keyfile import KeyFileError
from llmmesh.framework.server import create_server
from llmmesh.settings import Settings, SettingsError

log = logging.getLogger("llmmesh.main")


def parse_args(argv: list[str] | None, settings: Settings) -> Settings:
    parser = argparse.ArgumentParser(prog="llmmesh-serve", description=__doc__)
    parser.add_argument("--services", help="'all' (monolith) or a comma-separated subset")
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--metrics-port", type=int)
    args = parser.parse_args(argv)
    changes: dict[str, object] = {}
    if args.services:
        env = {"LLMMESH_SERVICES": args.services}
        changes["services"] = Settings.from_env(env).services
    for name in ("host", "port", "metrics_port"):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    return dataclasses.replace(settings, **changes)  # type: ignore[arg-type]


def service_name(settings: Settings) -> str:
    """The trace service name unless OTEL_SERVICE_NAME says: llmmesh, or llmmesh-<service>."""
    all_services = Settings().services
    return "llmmesh" if set(settings.services) == set(all_services) else "llmmesh-" + "-".join(settings.services)


async def serve(settings: Settings) -> None:
    server, port = create_server(settings)
    await server.start()
    gateway = None
    if settings.serve_gateway:
        from llmmesh.gateway import hosted  # the gateway's dependencies only where it is served

        gateway = await hosted.serve_beside(server, f"{settings.host}:{port}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    metrics = f" metrics=:{server.metrics.port}" if server.metrics else ""
    log.info(f"serving {','.join(settings.services)} on {settings.host}:{port}{metrics}",
             extra={"port": port, "services": list(settings.services)})
    await stop.wait()
    if gateway is not None:
        # The gateway is a client of the services: its streams finish while they still serve.
        log.info("stopping the gateway: draining in-flight requests")
        await gateway.cleanup()
    await server.stop()
    await server.wait_for_termination()


def main(argv: list[str] | None = None) -> int:
    try:
        settings = parse_args(argv, Settings.from_env())
    except SettingsError as exc:
        print(f"llmmesh-serve: {exc}")
        return 2
    json_logging.configure(settings.log_level)
    tracing.configure(service_name(settings), content=settings.trace_content)
    try:
        event_loop.run(serve(settings))
    except (SettingsError, KeyFileError) as exc:  # the key files are read when the server is built
        print(f"llmmesh-serve: {exc}")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
