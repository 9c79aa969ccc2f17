"""The gateway served by the process that hosts the inference service (LLMMESH_SERVE_GATEWAY=true;
`./scripts/up` runs the monolith so).

Its OpenAI and Ollama fronts call the inference service in-process (llmmesh.framework.local_channel):
the same handlers and interceptors — keys, quotas, request ids, metrics, errors — as over gRPC, without
a second process, nor a gRPC call per request, nor a protobuf encode and decode per streamed message.
The MCP front runs the patterns through this process's own gRPC port (or LLMMESH_PATTERNS_TARGET),
its metrics are on the process's one registry, and its routes, port and settings are the
standalone gateway's (GatewaySettings).
"""

from __future__ import annotations

from aiohttp import web

from llmmesh.framework.server import MeshServer
from llmmesh.gateway.app import create_app
from llmmesh.gateway.main import start
from llmmesh.gateway.upstream import Inference, Upstream
from llmmesh.settings import GatewaySettings

# What the hosted gateway's inference "target" is called in logs and errors.
IN_PROCESS = "in-process"


async def serve_beside(server: MeshServer, own_target: str, settings: GatewaySettings | None = None) -> web.AppRunner:
    """Start the gateway beside `server` (already started), whose gRPC port is `own_target`."""
    settings = settings or GatewaySettings.from_env()
    inference = Inference(IN_PROCESS, settings.tls, local=server.local)
    patterns = Upstream(settings.patterns_target or own_target, settings.tls)
    return await start(create_app(settings, server.registry, inference, patterns), settings, IN_PROCESS)
