"""A real MCP server for tests: the official SDK's MCPServer (FastMCP) over streamable HTTP, served
by uvicorn on loopback in the test's event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

BIG_TEXT_CHARS = 50_000


def demo_server() -> MCPServer:
    mcp = MCPServer("demo")

    @mcp.tool(description="Add two integers.")
    def add(a: int, b: int) -> int:
        return a + b

    @mcp.tool(description="Say something back.")
    def echo(text: str) -> str:
        return f"echo: {text}"

    @mcp.tool(description="Always fails.")
    def broken() -> str:
        raise ToolError("the demo tool is broken")

    @mcp.tool(description="A long text.")
    def big() -> str:
        return "x" * BIG_TEXT_CHARS

    return mcp


@dataclass
class RunningMcp:
    port: int
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/mcp"


@asynccontextmanager
async def running_mcp_server(server: MCPServer | None = None, **app_options: Any) -> AsyncIterator[RunningMcp]:
    """`app_options` go to the SDK's `streamable_http_app` (e.g. its transport_security)."""
    app = (server or demo_server()).streamable_http_app(**app_options)
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    task = asyncio.create_task(uv.serve())
    try:
        async with asyncio.timeout(10):
            while not uv.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.02)
        (sock,) = [s for srv in uv.servers for s in srv.sockets][:1]
        yield RunningMcp(sock.getsockname()[1])
    finally:
        uv.should_exit = True
        await asyncio.wait_for(task, 10)
