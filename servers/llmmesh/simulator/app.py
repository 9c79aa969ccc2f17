"""``create_app``: the aiohttp application of one simulator instance."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from llmmesh.framework.http_tracing import server_middlewares
from llmmesh.simulator import anthropic_api, control, native, openai_compat
from llmmesh.simulator.config import SimulatorConfig
from llmmesh.simulator.state import STATE, SimulatorState

INSTANCE_HEADER = "x-sim-instance"  # on every response, so failover tests see who answered
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _key_check(key: str) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """With a key, the /v1/ routes answer 401 without it, each API family in its own words."""

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/v1/"):
            return await handler(request)
        if anthropic_api.VERSION_HEADER in request.headers or request.path == "/v1/messages":
            if request.headers.get("x-api-key") != key:
                return anthropic_api.anthropic_error(401, "invalid x-api-key")
        elif (given := request.headers.get("authorization", "")) != f"Bearer {key}":
            # Like OpenAI's, the message quotes the key it got: callers must not pass it on.
            return openai_compat.openai_error(401, f"Incorrect API key provided: {given.removeprefix('Bearer ')}.")
        return await handler(request)

    return check


def create_app(config: SimulatorConfig) -> web.Application:
    # Traced as a server (tracing on only): the backend end of a request's one trace.
    middlewares = [*server_middlewares(), *([_key_check(config.api_key)] if config.api_key else [])]
    app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=middlewares)
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
    anthropic_api.add_routes(app)
    control.add_routes(app)
    return app
