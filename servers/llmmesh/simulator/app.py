"""``create_app``: the aiohttp application of one simulator instance."""

from __future__ import annotations

from aiohttp import web

from llmmesh.simulator import control, native, openai_compat
from llmmesh.simulator.config import SimulatorConfig
from llmmesh.simulator.state import STATE, SimulatorState

INSTANCE_HEADER = "x-sim-instance"  # on every response, so failover tests see who answered


def create_app(config: SimulatorConfig) -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    state = SimulatorState.from_config(config)
    app[STATE] = state

    async def tag_response(request: web.Request, response: web.StreamResponse) -> None:
        response.headers[INSTANCE_HEADER] = config.name

    async def release_hangs(app: web.Application) -> None:
        state.closing.set()

    app.on_response_prepare.append(tag_response)
    app.on_shutdown.append(release_hangs)
    native.add_routes(app)
    openai_compat.add_routes(app)
    control.add_routes(app)
    return app
