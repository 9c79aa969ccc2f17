"""The mesh's patterns as an MCP server (the official `mcp` SDK), over streamable HTTP at /mcp.

Stateless: every POST is answered on its own (no session to pin to one gateway replica), a tool
call's progress notifications and result on that POST's event stream. Tools are the patterns
(llmmesh.gateway.pattern_tools); a call runs the pattern's stream through the mesh with the
caller's API key, so the pattern service checks the key and its scope as for any other call.
With LLMMESH_API_KEYS_FILE the gateway also checks keys itself: no or an unknown key is a 401
before anything runs, and a key sees only the tools its scopes allow.
"""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import aclosing
from typing import Any

import mcp_types as types
from aiohttp import web
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.exceptions import MCPError

from llmmesh.framework.auth import AllowAll, ApiKeyAuthenticator, Authenticator
from llmmesh.framework.errors import PermissionDenied, Unauthenticated
from llmmesh.framework.principal import Principal
from llmmesh.gateway import asgi
from llmmesh.gateway.errors import ApiError
from llmmesh.gateway.pattern_tools import Outcome, PatternTool, Progress, pattern_tools
from llmmesh.gateway.upstream import Upstream, call_options
from llmmesh.settings import GatewaySettings
from llmmesh.tools.base import ToolError
from llmmesh.topology.description import MCP_PATH, SERVICES

# The caller the gateway authenticated, handed to the MCP handlers in the ASGI scope.
_PRINCIPAL = "llmmesh.principal"
# Token deltas are many: their progress is reported at most this often.
DELTA_PROGRESS_S = 0.5
_PROGRESS_CHARS = 500


def authenticator(settings: GatewaySettings) -> Authenticator:
    if not settings.api_keys_file:
        return AllowAll()
    return ApiKeyAuthenticator.from_file(settings.api_keys_file, {s.grpc_service: s.name for s in SERVICES})


class McpFront:
    def __init__(self, settings: GatewaySettings, patterns: Upstream, auth: Authenticator) -> None:
        self._settings, self._patterns, self._auth = settings, patterns, auth
        self.tools = pattern_tools()
        self.server: Server[Any] = Server(
            "llmmesh", version="1", instructions=f"The llmmesh patterns as tools: {', '.join(self.tools)}. A call "
            "runs the pattern on the mesh's models and reports its progress.",
            on_list_tools=self._list_tools, on_call_tool=self._call_tool)
        self.manager = StreamableHTTPSessionManager(self.server, stateless=True,
                                                    max_request_body_size=settings.max_body_bytes)
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle: the SDK's task group lives in one task of its own ------------------------------

    async def start(self, app: web.Application) -> None:
        started = asyncio.Event()

        async def run() -> None:
            async with self.manager.run():
                started.set()
                await self._stop.wait()

        self._task = asyncio.create_task(run())
        await started.wait()

    async def stop(self, app: web.Application) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task

    # -- HTTP --------------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            principal = self._auth.authenticate(None, request.headers)
        except (Unauthenticated, PermissionDenied) as exc:
            status = 401 if isinstance(exc, Unauthenticated) else 403
            body = {"jsonrpc": "2.0", "id": None, "error": {"code": -32001, "message": exc.message}}
            return web.json_response(body, status=status, headers={"www-authenticate": 'Bearer realm="llmmesh"'})
        return await asgi.serve(self.manager.handle_request, request, {_PRINCIPAL: principal})

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", MCP_PATH, self.handle)
        app.on_startup.append(self.start)
        app.on_cleanup.append(self.stop)

    # -- MCP ---------------------------------------------------------------------------------------

    @staticmethod
    def _allowed(ctx: Any, tool: PatternTool) -> bool:
        principal: Principal | None = ctx.request.scope.get(_PRINCIPAL) if ctx.request is not None else None
        return principal is None or principal.may_call(tool.scope)

    async def _list_tools(self, ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[
            types.Tool(name=t.name, description=t.description, input_schema=t.input_schema,
                       output_schema=t.output_schema)
            for t in self.tools.values() if self._allowed(ctx, t)])

    async def _call_tool(self, ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        tool = self.tools.get(params.name)
        if tool is None or not self._allowed(ctx, tool):
            raise MCPError(types.INVALID_PARAMS, f"unknown tool {params.name!r}")
        try:
            request = tool.request(params.arguments)
            options = call_options(ctx.request.headers if ctx.request is not None else {}, self._settings.timeout_s)
        except ToolError as exc:
            return _error(f"{exc.code}: {exc.message}")
        except ApiError as exc:
            return _error(f"INVALID_ARGUMENT: {exc.message}")
        reporter = _ProgressReporter(ctx)
        async with aclosing(tool.run(self._patterns.channel, request, options)) as events:
            async for event in events:
                if isinstance(event, Progress):
                    await reporter.report(event)
                elif isinstance(event, Outcome):
                    if event.result is None:
                        return _error(self._explained(event.error))
                    return types.CallToolResult(content=[types.TextContent(type="text", text=_dumps(event.result))],
                                                structured_content=event.result)
        return _error("UNAVAILABLE: the run ended without a result")

    def _explained(self, error: str) -> str:
        if error.startswith("UNIMPLEMENTED"):  # microservices: the inference process hosts no pattern
            return (f"{error} (the patterns are not served at {self._patterns.target}: point "
                    "LLMMESH_PATTERNS_TARGET at Envoy's internal listener or the pattern's service)")
        return error


class _ProgressReporter:
    """notifications/progress for the events of a run (a no-op when the caller asked for none):
    one per event, except token deltas, which are summed up at most every DELTA_PROGRESS_S."""

    def __init__(self, ctx: Any) -> None:
        self._ctx = ctx
        self._count = 0
        self._deltas = ""
        self._last = 0.0

    async def report(self, event: Progress) -> None:
        self._count += 1
        if event.delta is not None:
            self._deltas += event.delta
            if time.monotonic() - self._last < DELTA_PROGRESS_S:
                return
            message = f"{event.kind}: …{self._deltas[-200:]}"
        else:
            message = f"{event.kind}: {_dumps(event.event)}"
        self._deltas, self._last = "", time.monotonic()
        await self._ctx.session.report_progress(self._count, None, message[:_PROGRESS_CHARS])


def _error(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))
