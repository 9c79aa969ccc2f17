"""The tools of MCP servers (streamable HTTP, the official `mcp` SDK's client), named
`<server>.<tool>`, for tool use and plan-and-execute.

Servers are allow-listed by configuration (LLMMESH_MCP_SERVERS) and reached under the http_get
tool's rules: every address the server's host resolves to must be public — loopback, private,
link-local (cloud metadata) and the like are refused — unless the host is named exactly on
LLMMESH_MCP_ALLOW_INTERNAL; each connection is pinned to the address that was checked (Host and
TLS SNI keep the name), so a DNS answer that changes in between cannot send it elsewhere; the SDK
follows redirects only within the server's origin; every response body is capped; proxy settings
from the environment are ignored. A call is bounded by the tool timeout and its output by the
tool output cap, as every tool's (llmmesh.tools.registry). Each call is its own short MCP session.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import jsonschema
import mcp_types as types
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client

from llmmesh.framework import request_context
from llmmesh.tools.addresses import AllowList, IPAddress, checked_address, normalize_host
from llmmesh.tools.base import ToolError, ToolExample
from llmmesh.tools.http_get import MAX_BODY_BYTES
from llmmesh.tools.remote import RemoteTools

log = logging.getLogger("llmmesh.tools.mcp")

MAX_NAME_CHARS = 64
# tools/list pages read at most (a server that paginates forever cannot hang discovery).
MAX_PAGES = 20


def tool_name(server: str, tool: str) -> str:
    """`<server>.<tool>`, restricted to the characters every model API accepts in a tool name."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{server}.{tool}")[:MAX_NAME_CHARS]


class _CappedBody(httpx2.AsyncByteStream):
    def __init__(self, inner: httpx2.AsyncByteStream, limit: int) -> None:
        self._inner, self._limit = inner, limit

    async def __aiter__(self) -> AsyncIterator[bytes]:
        seen = 0
        async for chunk in self._inner:
            seen += len(chunk)
            if seen > self._limit:
                raise httpx2.ReadError(f"the MCP server's response is larger than {self._limit} bytes")
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


class _PinnedTransport(httpx2.AsyncBaseTransport):
    """Sends every request to the checked address of the server's host, and nowhere else."""

    def __init__(self, host: str, ip: IPAddress, max_bytes: int) -> None:
        self._host, self._ip, self._max_bytes = host, ip, max_bytes
        self._inner = httpx2.AsyncHTTPTransport(trust_env=False)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if normalize_host(request.url.host) != self._host:
            raise httpx2.ConnectError(f"refusing to leave the MCP server's host for {request.url.host!r}")
        if request.url.scheme == "https":
            request.extensions["sni_hostname"] = request.url.host
        request.url = request.url.copy_with(host=str(self._ip))  # the Host header keeps the name
        response = await self._inner.handle_async_request(request)
        assert isinstance(response.stream, httpx2.AsyncByteStream)
        response.stream = _CappedBody(response.stream, self._max_bytes)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


class McpServer(RemoteTools):
    """One MCP server whose tools are offered as `<name>.<tool>`."""

    kind = "MCP"
    log = log

    def __init__(self, name: str, url: str, allow_internal: Sequence[str], timeout_s: float,
                 max_bytes: int = MAX_BODY_BYTES) -> None:
        super().__init__(url, timeout_s)
        self.name, self.url = name, httpx2.URL(url)
        # Any host may be public; only those named exactly may be internal (llmmesh.tools.addresses).
        self._allow = AllowList.of(("*", *allow_internal))
        self._max_bytes = max_bytes

    @asynccontextmanager
    async def session(self) -> AsyncIterator[Client]:
        """A connected MCP client, through the address guard."""
        host = normalize_host(self.url.host)
        ip = await checked_address(host, self.url.port or (443 if self.url.scheme == "https" else 80), self._allow)
        rid = request_context.request_id.get()
        http = httpx2.AsyncClient(transport=_PinnedTransport(host, ip, self._max_bytes), trust_env=False,
                                  timeout=httpx2.Timeout(self.timeout_s),
                                  headers={"x-request-id": rid} if rid else None)
        async with http, Client(streamable_http_client(str(self.url), http_client=http),
                                read_timeout_seconds=self.timeout_s, cache=None) as client:
            yield client

    async def discover(self) -> list[McpTool]:
        tools: list[types.Tool] = []
        async with self.session() as client:
            cursor: str | None = None
            for _ in range(MAX_PAGES):
                page = await client.list_tools(cursor=cursor)
                tools += page.tools
                cursor = page.next_cursor
                if not cursor:
                    break
        out = []
        for tool in tools:
            try:
                out.append(McpTool(self, tool))
            except jsonschema.SchemaError as exc:
                log.warning("MCP tool %s on %s has an invalid input schema, skipped: %s", tool.name, self.url,
                            str(exc.message)[:200])
        return out

    async def close(self) -> None:
        """Nothing stays open: every call is its own session."""


class McpTool:
    def __init__(self, server: McpServer, tool: types.Tool) -> None:
        self._server = server
        self.remote_name = tool.name
        self.name = tool_name(server.name, tool.name)
        self.source = str(server.url)
        self.description = tool.description or tool.title or f"The {tool.name} tool of MCP server {server.name}."
        schema = dict(tool.input_schema or {})
        jsonschema.Draft202012Validator.check_schema(schema)
        self.parameters: dict[str, Any] = schema if schema.get("type") == "object" else {"type": "object"}
        self.examples: tuple[ToolExample, ...] = ()

    async def call(self, arguments: dict[str, Any]) -> str:
        try:
            async with self._server.session() as client:
                result = await client.call_tool(self.remote_name, arguments)
        except Exception as exc:  # the SDK's task groups wrap what failed
            raise self._failure(exc) from None
        text = result_text(result)
        if result.is_error:
            raise ToolError("UNKNOWN", text[:1000] or f"the MCP tool {self.remote_name} failed")
        return text

    def _failure(self, exc: Exception) -> ToolError:
        """An MCP error or a transport failure as a ToolError; anything else propagates as is."""
        for leaf in _leaves(exc):
            if isinstance(leaf, ToolError):
                return leaf
            if isinstance(leaf, MCPError):
                code = "INVALID_ARGUMENT" if leaf.error.code == types.INVALID_PARAMS else "UNAVAILABLE"
                return ToolError(code, f"MCP server {self._server.name}: {leaf.error.message}"[:1000])
            if isinstance(leaf, httpx2.HTTPError | OSError):
                return ToolError("UNAVAILABLE", f"MCP server {self._server.name}: {type(leaf).__name__}: {leaf}"[:1000])
        raise exc


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def result_text(result: types.CallToolResult) -> str:
    """A tool result as the text a model reads: its text content, else its structured content as JSON."""
    parts = []
    for block in result.content:
        if isinstance(block, types.TextContent):
            parts.append(block.text)
        elif isinstance(block, types.EmbeddedResource) and isinstance(block.resource, types.TextResourceContents):
            parts.append(block.resource.text)
        else:
            parts.append(f"[{block.type} content omitted]")
    if not any(p.strip() for p in parts) and result.structured_content is not None:
        return json.dumps(result.structured_content, ensure_ascii=False)
    return "\n".join(parts)
