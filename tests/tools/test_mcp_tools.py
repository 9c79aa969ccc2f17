"""MCP servers' tools beside the built-ins: a real MCP server (the official SDK's MCPServer on
loopback, allowed with LLMMESH_MCP_ALLOW_INTERNAL) discovered and called through the registry,
the address guard of http_get applied to it, bounded responses, tool use calling an MCP tool the
simulator's model asked for, and the setting's syntax."""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

import pytest
from mcp.server.transport_security import TransportSecuritySettings

from llmmesh.framework.validation import Violations
from llmmesh.settings import PatternLimits, SettingsError
from llmmesh.simulator.config import ScriptRule
from llmmesh.tools import addresses
from llmmesh.tools.base import ToolError
from llmmesh.tools.mcp_tools import McpServer
from llmmesh.tools.registry import ToolRegistry, ToolSet
from llmmesh.tooluse.v1 import tooluse_service_pb2 as pb
from llmmesh.tooluse.v1 import tooluse_service_pb2_grpc as pb_grpc
from tests.support.mcp_servers import BIG_TEXT_CHARS, running_mcp_server
from tests.support.sims import sim

pytestmark = pytest.mark.xdist_group("tools_mcp")


def limits(url: str, allow: tuple[str, ...] = ("127.0.0.1",), **overrides: object) -> PatternLimits:
    return PatternLimits(mcp_servers=(("local", url),), mcp_allow_internal=allow, tool_timeout_s=5.0,
                         **overrides)  # type: ignore[arg-type]


async def test_mcp_tools_are_discovered_named_and_called() -> None:
    async with running_mcp_server() as server:
        registry = ToolRegistry(limits(server.url, tool_output_chars=1000))
        try:
            tools = await registry.tools()
            chosen = await registry.select(["local.add", "local.echo", "local.broken", "local.big"], "tools",
                                           Violations())
            added = await chosen.call("local.add", {"a": 2, "b": 3}, "c1")
            echoed = await chosen.call("local.echo", {"text": "hi"})
            broken = await chosen.call("local.broken", {})
            big = await chosen.call("local.big", {})
            wrong = await chosen.call("local.add", {"a": "two", "b": 3})
        finally:
            await registry.close()
    mcp = {name: t for name, t in tools.items() if t.source == server.url}
    assert set(mcp) == {"local.add", "local.echo", "local.broken", "local.big"}
    assert {"calculator", "clock", "http_get"} <= set(tools)  # beside the built-ins
    add = mcp["local.add"]
    assert add.description == "Add two integers."
    assert add.parameters["properties"]["a"]["type"] == "integer" and add.parameters["required"] == ["a", "b"]
    assert (added.output, added.error, added.call_id) == ("5", None, "c1")
    assert echoed.output == "echo: hi"
    assert broken.error is not None and broken.error.code == "UNKNOWN" and "broken" in broken.error.message
    assert big.truncated and len(big.output) == 1000 and big.error is None  # the tool output cap
    # Arguments are checked against the MCP tool's own schema before anything is sent.
    assert wrong.error is not None and wrong.error.code == "INVALID_ARGUMENT" and "'two'" in wrong.error.message


@pytest.mark.parametrize(("url_host", "allow"), [("127.0.0.1", ()), ("localhost", ("127.0.0.1",))])
async def test_internal_addresses_need_the_host_named_exactly(url_host: str, allow: tuple[str, ...],
                                                              caplog: pytest.LogCaptureFixture) -> None:
    async with running_mcp_server() as server:
        url = server.url.replace("127.0.0.1", url_host)
        registry = ToolRegistry(limits(url, allow=allow))
        with caplog.at_level(logging.WARNING, logger="llmmesh.tools.mcp"):
            tools = await registry.tools()
        await registry.close()
    assert not [n for n in tools if n.startswith("local.")]
    (warning,) = [r.getMessage() for r in caplog.records if url in r.getMessage()]
    assert "non-public address" in warning and "named exactly" in warning


async def test_a_response_over_the_byte_cap_is_an_error_not_a_memory_hog() -> None:
    async with running_mcp_server() as server:
        remote = McpServer("local", server.url, ("127.0.0.1",), timeout_s=5.0, max_bytes=BIG_TEXT_CHARS // 2)
        tools = {t.name: t for t in await remote.tools()}
        registry = ToolRegistry(PatternLimits(tool_timeout_s=5.0))
        outcome = await ToolSet(registry, tools).call("local.big", {})
        small = await ToolSet(registry, tools).call("local.add", {"a": 1, "b": 1})
    assert small.output == "2"
    assert outcome.error is not None and outcome.error.code == "UNAVAILABLE"
    assert f"larger than {BIG_TEXT_CHARS // 2} bytes" in outcome.error.message
    assert outcome.output == ""


async def test_the_connection_goes_to_the_checked_address_under_the_servers_name(monkeypatch) -> None:
    answers = {"mcp.test": ["127.0.0.1"], "rebind.test": ["93.184.215.14", "127.0.0.1"]}
    lookups: list[str] = []

    async def fake_resolve(host: str, port: int) -> list[Any]:
        lookups.append(host)
        return [ipaddress.ip_address(a) for a in answers[host]]

    monkeypatch.setattr(addresses, "resolve", fake_resolve)
    # The SDK's own DNS-rebinding check would refuse the test's made-up host name.
    async with running_mcp_server(transport_security=TransportSecuritySettings(
            enable_dns_rebinding_protection=False)) as server:
        named = McpServer("named", f"http://mcp.test:{server.port}/mcp", ("mcp.test",), timeout_s=5.0)
        found = {t.name: t for t in await named.tools()}
        added = await ToolSet(ToolRegistry(PatternLimits()), found).call("named.add", {"a": 1, "b": 2})
        rebound = McpServer("rebound", f"http://rebind.test:{server.port}/mcp", (), timeout_s=5.0)
        with pytest.raises(ToolError) as refused:
            async with rebound.session():
                pass
    # "mcp.test" exists nowhere but in the check: every request went to the address it answered.
    assert added.output == "3" and set(lookups) == {"mcp.test", "rebind.test"}
    # One public and one loopback answer: refused, as http_get refuses it.
    assert refused.value.code == "PERMISSION_DENIED" and "127.0.0.1" in refused.value.message


# The follow-up rule comes first and matches only the tool result, so the calling rule cannot
# answer the second turn again.
RULES = (ScriptRule(match="regex:^5$", target="last", response="The sum is 5."),
         ScriptRule(match="add 2 and 3", tool_calls=({"function": {"name": "local.add",
                                                                   "arguments": {"a": 2, "b": 3}}},)))


async def test_tool_use_calls_an_mcp_tool_and_lists_it(inference_mesh) -> None:
    async with running_mcp_server() as server, inference_mesh(
            sim(*RULES), services=("inference", "tooluse"),
            limits={"mcp_servers": (("local", server.url),), "mcp_allow_internal": ("127.0.0.1",)}) as m:
        stub = pb_grpc.ToolUseServiceStub(m.channel)
        resp = await stub.Execute(pb.ExecuteRequest(prompt="Please add 2 and 3.", model="m", tools=["local.add"]),
                                  timeout=30)
        listed = await stub.ListTools(pb.ListToolsRequest(), timeout=30)
    (result,) = resp.results
    assert (result.name, result.output, result.HasField("error")) == ("local.add", "5", False)
    assert resp.answer.strip() == "The sum is 5."
    by_name = {t.name: t for t in listed.tools}
    assert by_name["local.echo"].source == server.url and by_name["calculator"].source == "builtin"


def test_the_setting_names_servers_by_url() -> None:
    parsed = PatternLimits.from_env({
        "LLMMESH_MCP_SERVERS": "docs=https://mcp.example.com/mcp, local=http://127.0.0.1:8000/mcp",
        "LLMMESH_MCP_ALLOW_INTERNAL": "127.0.0.1"})
    assert parsed.mcp_servers == (("docs", "https://mcp.example.com/mcp"), ("local", "http://127.0.0.1:8000/mcp"))
    assert parsed.mcp_allow_internal == ("127.0.0.1",)
    for bad, why in [("Docs=https://x/mcp", "must match"), ("docs=ftp://x/mcp", "not an http"),
                     ("a=https://x/mcp,a=https://y/mcp", "duplicate"), ("https://x/mcp", "name=value")]:
        with pytest.raises(SettingsError, match=why):
            PatternLimits.from_env({"LLMMESH_MCP_SERVERS": bad})
