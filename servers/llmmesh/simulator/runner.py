"""Start and stop a simulator on a real TCP port (used by ``main`` and by tests)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from aiohttp import web

from llmmesh.simulator.app import create_app
from llmmesh.simulator.config import SimulatorConfig
from llmmesh.simulator.state import STATE, SimulatorState


@dataclass
class RunningSimulator:
    runner: web.AppRunner
    host: str
    port: int
    tls: bool = False

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def state(self) -> SimulatorState:
        return self.runner.app[STATE]

    async def stop(self) -> None:
        await self.runner.cleanup()


def server_tls(cert_file: str, key_file: str) -> ssl.SSLContext:
    """HTTPS with this certificate: a stand-in for a hosted API or a TLS proxy."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


async def start_simulator(
    config: SimulatorConfig, host: str = "127.0.0.1", port: int = 0, shutdown_timeout: float = 2.0,
    ssl_context: ssl.SSLContext | None = None,
) -> RunningSimulator:
    """Serve ``config`` on host:port (0 = pick a free port), over TLS with ``ssl_context``;
    ``await sim.stop()`` when done."""
    runner = web.AppRunner(create_app(config), access_log=None, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
    await site.start()
    bound = runner.addresses[0][1]  # the real port when 0 was asked for
    return RunningSimulator(runner=runner, host=host, port=bound, tls=ssl_context is not None)
