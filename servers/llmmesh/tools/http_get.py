"""`http_get`: fetch a URL from an operator-approved host.

Disabled unless `limits.http_tool_allow` names hosts. Redirects are followed by hand so every hop
is checked again, and each request is pinned to the address that was checked (Host header and
TLS SNI keep the name), so a DNS answer that changes between check and connect cannot smuggle the
request to an internal address. Proxy settings from the environment are ignored.

The body is capped in bytes *as received and as decoded*: the request asks for no compression,
and a server that compresses anyway (gzip/deflate) is decoded incrementally up to the cap, so a
small "decompression bomb" cannot inflate into gigabytes; other encodings are refused. The whole
fetch, redirects included, is bounded by the tool timeout even when a server trickles bytes
slowly enough to keep every single read alive.
"""

from __future__ import annotations

import asyncio
import json
import zlib
from collections.abc import Sequence
from typing import Any

import httpx

from llmmesh.tools.addresses import AllowList, IPAddress, checked_address
from llmmesh.tools.base import BUILTIN, ToolError, ToolExample

MAX_REDIRECTS = 5
MAX_BODY_BYTES = 1_000_000
MAX_URL_CHARS = 2048
_REDIRECTS = {301, 302, 303, 307, 308}


class HttpGet:
    name = "http_get"
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {
            "url": {"type": "string", "minLength": 1, "maxLength": MAX_URL_CHARS,
                    "description": "http:// or https:// URL on an allowed host"},
        },
        "required": ["url"],
        "additionalProperties": False,
    }
    source = BUILTIN
    _EXAMPLES = (ToolExample("Is https://status.example.com/health up?", {"url": "https://status.example.com/health"},
                             json.dumps({"url": "https://status.example.com/health", "status": 200,
                                         "content_type": "text/plain", "body": "ok", "body_truncated": False}),
                             "Yes: https://status.example.com/health answers 200 ok."),)

    def __init__(self, allow: Sequence[str], timeout_s: float, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.allow = AllowList.of(allow)
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes

    @property
    def description(self) -> str:
        if not self.allow:
            return "Fetch a web page by HTTP GET. Disabled on this server (no hosts are allowed)."
        return ("Fetch a URL by HTTP GET and return its status, content type and body as text. "
                f"Allowed hosts: {', '.join(self.allow.entries)}.")

    @property
    def examples(self) -> tuple[ToolExample, ...]:
        return self._EXAMPLES if self.allow else ()  # a disabled tool is not worth a demonstration

    async def call(self, arguments: dict[str, Any]) -> str:
        if not self.allow:
            raise ToolError("FAILED_PRECONDITION",
                            "http_get is disabled on this server: no hosts are allowed (LLMMESH_HTTP_TOOL_ALLOW)")
        try:
            url = httpx.URL(arguments["url"])
        except (httpx.InvalidURL, TypeError) as exc:
            raise ToolError("INVALID_ARGUMENT", f"not a URL: {exc}") from None
        try:
            async with asyncio.timeout(self.timeout_s):
                return await self._fetch(url)
        except TimeoutError:
            raise ToolError("DEADLINE_EXCEEDED", f"fetching {url} took longer than {self.timeout_s:g}s") from None

    async def _fetch(self, url: httpx.URL) -> str:
        async with httpx.AsyncClient(trust_env=False, follow_redirects=False,
                                     timeout=httpx.Timeout(self.timeout_s)) as http:
            for _ in range(MAX_REDIRECTS + 1):
                ip = await self._checked_address(url)
                try:
                    result = await self._get(http, url, ip)
                except httpx.HTTPError as exc:
                    raise ToolError("UNAVAILABLE", f"fetching {url} failed: {type(exc).__name__}") from None
                if isinstance(result, httpx.URL):
                    url = result
                    continue
                return result
        raise ToolError("FAILED_PRECONDITION", f"more than {MAX_REDIRECTS} redirects")

    async def _checked_address(self, url: httpx.URL) -> IPAddress:
        """The address to connect to, after the scheme, the allow-list and every resolved address
        of the host passed."""
        if url.scheme not in ("http", "https"):
            raise ToolError("INVALID_ARGUMENT", f"only http and https URLs are allowed, not {url.scheme!r}")
        return await checked_address(url.host, url.port or (443 if url.scheme == "https" else 80), self.allow)

    async def _get(self, http: httpx.AsyncClient, url: httpx.URL, ip: IPAddress) -> str | httpx.URL:
        """The tool output, or the next URL of a redirect."""
        pinned = url.copy_with(host=str(ip))
        extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
        host_header = url.netloc.decode("ascii")
        headers = {"Host": host_header, "Accept-Encoding": "identity"}
        async with http.stream("GET", pinned, headers=headers, extensions=extensions) as resp:
            location = resp.headers.get("location")
            if resp.status_code in _REDIRECTS and location:
                return url.join(location)
            body = _BoundedBody(resp.headers.get("content-encoding", ""), self.max_bytes)
            # Raw bytes: httpx would otherwise inflate each compressed chunk without any bound.
            async for chunk in resp.aiter_raw():
                if body.feed(chunk):
                    break
            text = _decode(bytes(body.data), resp.charset_encoding)
        return json.dumps({"url": str(url), "status": resp.status_code,
                           "content_type": resp.headers.get("content-type", ""), "body": text,
                           "body_truncated": body.truncated})


class _BoundedBody:
    """At most `limit` decoded bytes of a body in identity, gzip or deflate encoding."""

    def __init__(self, encoding: str, limit: int) -> None:
        encoding = encoding.strip().lower()
        if encoding in ("", "identity"):
            self._inflate = None
        elif encoding in ("gzip", "x-gzip", "deflate"):
            self._inflate = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header
        else:
            raise ToolError("FAILED_PRECONDITION", f"unsupported content-encoding {encoding[:40]!r}")
        self.limit = limit
        self.data = bytearray()
        self.truncated = False

    def feed(self, chunk: bytes) -> bool:
        """Add a received chunk; True once the cap is reached (stop reading)."""
        room = self.limit - len(self.data)
        if self._inflate is not None:
            try:
                # One byte more than fits tells "exactly full" from "truncated".
                chunk = self._inflate.decompress(chunk, room + 1)
            except zlib.error:
                raise ToolError("UNAVAILABLE", "the response body is not valid gzip/deflate") from None
        if len(chunk) > room:
            self.data.extend(chunk[:room])
            self.truncated = True
            return True
        self.data.extend(chunk)
        return False


def _decode(body: bytes, charset: str | None) -> str:
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return body.decode("utf-8", errors="replace")
