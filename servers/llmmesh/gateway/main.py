"""`llmmesh-gateway`: the OpenAI- and Ollama-compatible APIs, the MCP server and the playground, as
their own process.

Settings come from the environment (GatewaySettings: LLMMESH_GATEWAY_PORT, LLMMESH_INFERENCE_TARGET,
LLMMESH_PATTERNS_TARGET, LLMMESH_PLAYGROUND_API_URL, …); flags override them. SIGTERM/SIGINT: stop
accepting, give in-flight requests LLMMESH_GRACE_PERIOD_S to finish, then cancel what is left (and
with it its model calls).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import signal

from aiohttp import web

from llmmesh.common import event_loop
from llmmesh.framework import json_logging, tracing
from llmmesh.framework.tls import server_ssl_context
from llmmesh.gateway.app import create_app
from llmmesh.settings import GatewaySettings, SettingsError

log = logging.getLogger("llmmesh.gateway")


def parse_args(argv: list[str] | None, settings: GatewaySettings) -> GatewaySettings:
    parser = argparse.ArgumentParser(prog="llmmesh-gateway", description=__doc__)
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--inference-target", help="host:port of the inference service (gRPC)")
    args = parser.parse_args(argv)
    changes = {name: value for name, value in vars(args).items() if value is not None}
    return dataclasses.replace(settings, **changes)


async def start(app: web.Application, settings: GatewaySettings, inference: str) -> web.AppRunner:
    """Serve `app` on the gateway's port, logged with where its `inference` calls go; `runner.cleanup()`
    stops it (SIGTERM: stop accepting, give in-flight requests LLMMESH_GRACE_PERIOD_S, then cancel
    what is left)."""
    # handler_cancellation: a client that disconnects cancels its handler, so its gRPC call too.
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=settings.grace_period_s)
    await runner.setup()
    # With mutual TLS on, only a client holding a certificate of the mesh's CA (Envoy) gets in.
    ssl_context = server_ssl_context(settings.tls) if settings.tls.enabled else None
    site = web.TCPSite(runner, settings.host, settings.port, ssl_context=ssl_context)
    await site.start()
    port = bound_port(runner, settings)
    log.info(f"gateway on {settings.host}:{port} -> inference {inference}",
             extra={"port": port, "inference_target": inference})
    return runner


def bound_port(runner: web.AppRunner, settings: GatewaySettings) -> int:
    return runner.addresses[0][1] if runner.addresses else settings.port


async def serve(settings: GatewaySettings) -> None:
    runner = await start(create_app(settings), settings, settings.inference_target)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping: draining in-flight requests")
    await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    try:
        settings = parse_args(argv, GatewaySettings.from_env())
    except SettingsError as exc:
        print(f"llmmesh-gateway: {exc}")
        return 2
    json_logging.configure(settings.log_level)
    tracing.configure("llmmesh-gateway")
    event_loop.run(serve(settings))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
