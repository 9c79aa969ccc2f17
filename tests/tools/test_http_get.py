"""http_get against a real local HTTP server: disabled by default, the allow-list, addresses
checked after DNS resolution, every redirect hop checked again, size caps and the timeout."""

from __future__ import annotations

import asyncio
import ipaddress
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from llmmesh.framework.validation import Violations
from llmmesh.settings import PatternLimits
from llmmesh.tools.addresses import AllowList, is_public
from llmmesh.tools.base import ToolOutcome
from llmmesh.tools.http_get import HttpGet
from llmmesh.tools.registry import ToolRegistry


@dataclass
class Site:
    port: int
    hits: list[str] = field(default_factory=list)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    state = Site(0)

    def redirect(location: str) -> Any:
        async def handler(request: web.Request) -> web.Response:
            state.hits.append(request.path)
            raise web.HTTPFound(location.format(port=state.port))
        return handler

    async def text(request: web.Request) -> web.Response:
        state.hits.append(request.path)
        if request.path == "/slow":
            await asyncio.sleep(3)
        body = {"/ok": "hello", "/big": "y" * 5000, "/secret": "secret"}.get(request.path, "")
        return web.Response(text=body, headers={"x-host-seen": request.host})

    app = web.Application()
    app.router.add_get("/ok", text)
    app.router.add_get("/big", text)
    app.router.add_get("/slow", text)
    app.router.add_get("/secret", text)
    app.router.add_get("/hop", redirect("/ok"))
    app.router.add_get("/loop", redirect("/loop"))
    app.router.add_get("/to-metadata", redirect("http://169.254.169.254/latest/meta-data/"))
    app.router.add_get("/to-localhost", redirect("http://localhost:{port}/secret"))
    app.router.add_get("/to-file", redirect("file:///etc/passwd"))
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    state.port = tcp._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield state
    finally:
        await runner.cleanup()


async def get(url: str, allow: tuple[str, ...] = (), **limits: Any) -> ToolOutcome:
    registry = ToolRegistry(PatternLimits(http_tool_allow=allow, **limits))
    tools = await registry.select(["http_get"], "tools", Violations())
    return await tools.call("http_get", {"url": url})


def refused(out: ToolOutcome, code: str, text: str) -> bool:
    assert out.error is not None, out
    assert out.error.code == code and text in out.error.message, out.error
    return True


async def test_disabled_unless_hosts_are_allowed(site: Site) -> None:
    assert refused(await get(site.url("/ok")), "FAILED_PRECONDITION", "disabled")
    assert site.hits == []


async def test_an_explicitly_allowed_loopback_host_is_fetched_and_redirects_followed(site: Site) -> None:
    out = await get(site.url("/hop"), allow=("127.0.0.1",))
    assert out.error is None, out.error
    value = json.loads(out.output)
    assert (value["status"], value["body"], value["url"]) == (200, "hello", site.url("/ok"))
    assert site.hits == ["/hop", "/ok"]


async def test_hosts_off_the_allow_list_are_refused_before_any_request(site: Site) -> None:
    assert refused(await get(site.url("/ok"), allow=("example.org",)), "PERMISSION_DENIED", "allow-list")
    assert site.hits == []


async def test_a_wildcard_never_reaches_loopback_even_through_dns(site: Site) -> None:
    assert refused(await get(site.url("/ok"), allow=("*",)), "PERMISSION_DENIED", "non-public")
    # "localhost" is a name: the address it resolves to is what gets checked.
    assert refused(await get(site.url("/ok", host="localhost"), allow=("*",)), "PERMISSION_DENIED", "non-public")
    assert site.hits == []


async def test_redirects_to_metadata_or_loopback_are_refused_at_the_hop(site: Site) -> None:
    allow = ("127.0.0.1", "*")  # the first hop is allowed by name; anything else must be public
    assert refused(await get(site.url("/to-metadata"), allow=allow), "PERMISSION_DENIED", "169.254.169.254")
    assert refused(await get(site.url("/to-localhost"), allow=allow), "PERMISSION_DENIED", "non-public")
    assert refused(await get(site.url("/to-localhost"), allow=("127.0.0.1",)), "PERMISSION_DENIED", "allow-list")
    assert "/secret" not in site.hits and site.hits.count("/to-localhost") == 2


async def test_only_http_and_https_even_after_a_redirect(site: Site) -> None:
    assert refused(await get("file:///etc/passwd", allow=("*",)), "INVALID_ARGUMENT", "only http and https")
    assert refused(await get(site.url("/to-file"), allow=("127.0.0.1",)), "INVALID_ARGUMENT", "only http and https")
    assert refused(await get(site.url("/loop"), allow=("127.0.0.1",)), "FAILED_PRECONDITION", "redirects")


async def test_body_and_output_are_capped(site: Site) -> None:
    out = await get(site.url("/big"), allow=("127.0.0.1",), tool_output_chars=300)
    assert out.truncated and len(out.output) == 300 and out.error is None
    body = json.loads(await HttpGet(("127.0.0.1",), 5.0, max_bytes=100).call({"url": site.url("/big")}))
    assert (body["body"], body["body_truncated"]) == ("y" * 100, True)


async def test_a_slow_server_hits_the_tool_timeout(site: Site) -> None:
    out = await get(site.url("/slow"), allow=("127.0.0.1",), tool_timeout_s=0.3)
    assert refused(out, "DEADLINE_EXCEEDED", "0.3s")


def test_allow_list_matching_and_address_classes() -> None:
    allow = AllowList.of(["Example.COM", "*.example.org", "[::1]"])
    assert allow.match("example.com.") == "exact" and allow.match("::1") == "exact"
    assert allow.match("api.example.org") == "pattern"
    assert allow.match("example.org") is None and allow.match("evil-example.com") is None
    assert not AllowList.of([])
    for internal in ("127.0.0.1", "169.254.169.254", "10.1.2.3", "192.168.0.1", "100.100.100.200", "0.0.0.0",
                     "::1", "fe80::1", "fd00:ec2::254", "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe",
                     "2002:a9fe:a9fe::1", "224.0.0.1"):
        assert not is_public(ipaddress.ip_address(internal)), internal
    assert is_public(ipaddress.ip_address("93.184.215.14")) and is_public(ipaddress.ip_address("2606:4700::1"))
