"""The tool sandbox against the known escapes (complementing tests/tools): other schemes, loopback
spelled every way (IPv6, mapped, decimal, octal, hex, short forms), names that resolve to
loopback, redirect chains to cloud metadata, compression bombs, endless and trickling bodies, and
code execution through the calculator and the clock. Every refusal happens before a request
reaches the (local) target, which records every hit."""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import json
import time
import tracemalloc
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from llmmesh.framework.validation import Violations
from llmmesh.settings import PatternLimits
from llmmesh.tools import addresses as addresses_module
from llmmesh.tools.base import ToolOutcome
from llmmesh.tools.http_get import HttpGet
from llmmesh.tools.registry import ToolRegistry

pytestmark = pytest.mark.xdist_group("security_tools")

BOMB_DECODED = 64 * 1024 * 1024  # 64 MiB of zeros, ~64 KiB on the wire


@dataclass
class Target:
    port: int = 0
    hits: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return gzip.compress(b"\0" * BOMB_DECODED, compresslevel=9)


@pytest.fixture
async def target(bomb: bytes) -> AsyncIterator[Target]:
    state = Target()

    async def record(request: web.Request) -> None:
        state.hits.append(request.path)
        state.headers.append(dict(request.headers))

    def redirect(location: str) -> Any:
        async def handler(request: web.Request) -> web.Response:
            await record(request)
            raise web.HTTPFound(location.format(port=state.port))
        return handler

    async def ok(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(text="fine")

    async def gzip_bomb(request: web.Request) -> web.Response:
        await record(request)  # compresses although the client asked for identity
        return web.Response(body=bomb, headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"})

    async def brotli(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(body=b"\x0b\x02\x80hello\x03", headers={"Content-Encoding": "br"})

    async def endless(request: web.Request) -> web.StreamResponse:
        await record(request)
        resp = web.StreamResponse()
        await resp.prepare(request)
        chunk = b"z" * 65536
        while True:  # until the client hangs up
            await resp.write(chunk)

    async def trickle(request: web.Request) -> web.StreamResponse:
        await record(request)
        resp = web.StreamResponse()
        await resp.prepare(request)
        while True:  # one byte per 50 ms: every read succeeds well within any per-read timeout
            await resp.write(b".")
            await asyncio.sleep(0.05)

    app = web.Application()
    for path, handler in {"/ok": ok, "/bomb": gzip_bomb, "/br": brotli, "/endless": endless,
                          "/trickle": trickle}.items():
        app.router.add_get(path, handler)
    chains = {
        "/chain1": "/chain2", "/chain2": "/chain3", "/chain3": "http://169.254.169.254/latest/meta-data/iam/",
        "/to-mapped-metadata": "http://[::ffff:a9fe:a9fe]/latest/meta-data/",
        "/to-decimal-metadata": "http://2852039166/latest/meta-data/",
        "/to-scheme-relative": "//169.254.169.254/computeMetadata/v1/",
        "/to-ipv6-loopback": "http://[::1]:{port}/ok",
        "/to-gopher": "gopher://127.0.0.1:{port}/_GET%20/ok",
        # The allowed host as user info: the host really is the metadata address.
        "/to-userinfo": "http://127.0.0.1:{port}@169.254.169.254/latest/meta-data/",
    }
    for path, location in chains.items():
        app.router.add_get(path, redirect(location))
    runner = web.AppRunner(app, shutdown_timeout=0.2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield state
    finally:
        await runner.cleanup()


async def fetch(url: str, allow: tuple[str, ...], **limits: Any) -> ToolOutcome:
    registry = ToolRegistry(PatternLimits(http_tool_allow=allow, **limits))
    tools = await registry.select(["http_get"], "tools", Violations())
    return await tools.call("http_get", {"url": url})


def refused(out: ToolOutcome, *codes: str) -> str:
    assert out.error is not None and out.output == "", out
    assert out.error.code in codes, out.error
    return out.error.message


@pytest.mark.parametrize("url", [
    "file:///etc/passwd", "FILE:///etc/passwd", "gopher://127.0.0.1:70/_x", "ftp://127.0.0.1/", "dict://127.0.0.1:11211/",
    "ldap://127.0.0.1/", "data:text/plain,hello", "javascript:alert(1)", "//127.0.0.1/", "/etc/passwd", "jar:file:/x!/",
])
async def test_only_http_and_https_are_fetched(url: str) -> None:
    refused(await fetch(url, ("*",)), "INVALID_ARGUMENT")


@pytest.mark.parametrize("host", [
    "127.0.0.1", "localhost", "[::1]", "[0:0:0:0:0:0:0:1]", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]",
    "2130706433", "0x7f000001", "0x7f.1", "127.1", "127.0.1", "0", "0.0.0.0", "017700000001", "[::]",
    "0177.0.0.1", "ip6-localhost", "LOCALHOST.", "127.0.0.1.",
])
async def test_loopback_in_every_spelling_is_refused_under_a_wildcard(target: Target, host: str) -> None:
    out = await fetch(target.url("/ok", host=host), ("*",))
    # Refused by the address check, or unparseable/unresolvable: never fetched either way.
    refused(out, "PERMISSION_DENIED", "INVALID_ARGUMENT", "UNAVAILABLE")
    assert target.hits == []


async def test_names_are_judged_by_every_address_they_resolve_to(target: Target, monkeypatch) -> None:
    answers = {"rebind.test": ["93.184.215.14", "127.0.0.1"], "evil.test": ["169.254.169.254"],
               "pinned.test": ["127.0.0.1"]}
    lookups: list[str] = []

    async def fake_resolve(host: str, port: int) -> list[Any]:
        lookups.append(host)
        return [ipaddress.ip_address(a) for a in answers[host]]

    # The one address check of every tool that reaches out (http_get, MCP servers).
    monkeypatch.setattr(addresses_module, "resolve", fake_resolve)
    assert "127.0.0.1" in refused(await fetch(target.url("/ok", "rebind.test"), ("*",)), "PERMISSION_DENIED")
    assert "169.254.169.254" in refused(await fetch(target.url("/ok", "evil.test"), ("*.test",)),
                                        "PERMISSION_DENIED")
    assert target.hits == []
    # Named exactly, an internal host is allowed; the request goes to the address that was checked
    # (one lookup, no second resolution to rebind) and still names the host.
    out = await fetch(target.url("/ok", "pinned.test"), ("pinned.test",))
    assert out.error is None and json.loads(out.output)["body"] == "fine"
    assert lookups.count("pinned.test") == 1 and target.headers[-1]["Host"] == f"pinned.test:{target.port}"


@pytest.mark.parametrize("path, expected", [
    ("/chain1", "169.254.169.254"),
    ("/to-mapped-metadata", "non-public"),
    ("/to-decimal-metadata", "non-public"),
    ("/to-scheme-relative", "169.254.169.254"),
    ("/to-ipv6-loopback", "non-public"),
    ("/to-gopher", "only http and https"),
    ("/to-userinfo", "169.254.169.254"),
])
async def test_redirects_cannot_leave_the_allow_list(target: Target, path: str, expected: str) -> None:
    # The first host is allowed by name; every later hop must be public.
    out = await fetch(target.url(path), ("127.0.0.1", "*"))
    assert expected in refused(out, "PERMISSION_DENIED", "INVALID_ARGUMENT")
    assert "/ok" not in target.hits


async def test_a_compression_bomb_inflates_only_to_the_cap(target: Target, bomb: bytes) -> None:
    tool = HttpGet(("127.0.0.1",), 10.0, max_bytes=100_000)
    tracemalloc.start()
    try:
        body = json.loads(await tool.call({"url": target.url("/bomb")}))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert body["body"] == "\0" * 100_000 and body["body_truncated"] is True
    assert len(bomb) < BOMB_DECODED / 100
    assert peak < 8 * 1024 * 1024, f"peak {peak} bytes while reading a {BOMB_DECODED}-byte bomb"
    assert target.headers[-1]["Accept-Encoding"] == "identity"
    refused_br = await fetch(target.url("/br"), ("127.0.0.1",))
    assert "content-encoding 'br'" in refused(refused_br, "FAILED_PRECONDITION")


async def test_endless_and_trickling_bodies_are_bounded_in_size_and_time(target: Target) -> None:
    started = time.monotonic()
    out = await fetch(target.url("/endless"), ("127.0.0.1",), tool_output_chars=1000)
    assert out.error is None and out.truncated and len(out.output) == 1000
    assert time.monotonic() - started < 5
    # A server trickling one byte at a time keeps every read alive; the total is still bounded,
    # by the registry and by the tool itself when called directly.
    started = time.monotonic()
    out = await fetch(target.url("/trickle"), ("127.0.0.1",), tool_timeout_s=0.5)
    assert out.error is not None and out.error.code == "DEADLINE_EXCEEDED"
    started = time.monotonic()
    with pytest.raises(Exception) as err:
        await HttpGet(("127.0.0.1",), 0.5).call({"url": target.url("/trickle")})
    assert getattr(err.value, "code", "") == "DEADLINE_EXCEEDED"
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize("expression", [
    "[x for x in (1, 2)]", "(x := 1)", "f'{1}'", "b'1'", "(1, 2)[0]", "{1: 2}", "globals()", "eval('1')",
    "exec('1')", "compile('1', 'f', 'eval')", "getattr(1, 'real')", "__builtins__", "vars()", "~1", "1 << 100000",
    "-" * 300 + "1", "sqrt(10**1200)", "10**1200 / 3", "floor(1e308) ** 5", "0.5 ** -10000", "9 ** 0.5 ** -1000",
])
async def test_the_calculator_runs_no_code_and_refuses_explosions(expression: str) -> None:
    out = await calculate(expression)
    assert out.error is not None and out.error.code == "INVALID_ARGUMENT", out


@pytest.mark.parametrize("expression", [
    "(" * 150 + "1" + ")" * 150, "(" * 250 + "1" + ")" * 250,
    "floor(1e308) * floor(1e308) * floor(1e308) * floor(1e308) * 2",  # just under the 4096-bit cap
    "max(" + ", ".join(["9**999"] * 16) + ")",
])
async def test_hostile_but_legal_arithmetic_finishes_fast_and_small(expression: str) -> None:
    out = await calculate(expression)
    assert out.error is None or out.error.code == "INVALID_ARGUMENT", out
    assert len(out.output) < 1300


async def calculate(expression: str) -> ToolOutcome:
    registry = ToolRegistry(PatternLimits())
    tools = await registry.select(["calculator"], "tools", Violations())
    started = time.monotonic()
    out = await tools.call("calculator", {"expression": expression})
    assert time.monotonic() - started < 1.0
    return out


@pytest.mark.parametrize("zone", ["/etc/passwd", "/proc/self/environ", "../../../../etc/passwd", "Europe/../../etc",
                                  "/usr/share/zoneinfo/UTC"])
async def test_the_clock_reads_no_files(zone: str) -> None:
    registry = ToolRegistry(PatternLimits())
    tools = await registry.select(["clock"], "tools", Violations())
    out = await tools.call("clock", {"timezone": zone})
    assert out.error is not None and out.error.code == "INVALID_ARGUMENT" and "root:" not in out.error.message


async def test_no_builtin_tool_reads_files_or_runs_code() -> None:
    registry = ToolRegistry(PatternLimits(http_tool_allow=("*",)))
    assert set(registry.builtins) == {"calculator", "clock", "http_get"}
    tools = await registry.select([], "tools", Violations())
    assert set(tools.tools) == {"calculator", "clock", "http_get"}
