"""Which hosts and addresses the tools that reach out may reach (http_get, MCP servers).

The allow-list names hosts: `example.com` (exactly that host), `*.example.com` (its subdomains),
`*` (any host), or an IP literal. Whatever matched, every address the host resolves to must be
public — loopback, link-local (cloud metadata lives at 169.254.169.254), private, shared,
reserved and multicast addresses are refused — unless the host is named exactly, which is how an
operator deliberately allows an internal host (e.g. `127.0.0.1` or `intranet.local`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from llmmesh.tools.base import ToolError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def normalize_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


@dataclass(frozen=True)
class AllowList:
    entries: tuple[str, ...]

    @classmethod
    def of(cls, hosts: Sequence[str]) -> AllowList:
        return cls(tuple(normalize_host(h) for h in hosts if h.strip()))

    def __bool__(self) -> bool:
        return bool(self.entries)

    def match(self, host: str) -> str | None:
        """"exact" when the host is named, "pattern" when a wildcard covers it, else None."""
        host = normalize_host(host)
        if host in self.entries:
            return "exact"
        for entry in self.entries:
            if entry == "*" or (entry.startswith("*.") and host.endswith(entry[1:])):
                return "pattern"
        return None


def embedded_ipv4(ip: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, NAT64), so it is judged as such."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def is_public(ip: IPAddress) -> bool:
    ip = embedded_ipv4(ip)
    return ip.is_global and not ip.is_multicast


async def resolve(host: str, port: int) -> list[IPAddress]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    out: list[IPAddress] = []
    for *_, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])  # drop an IPv6 scope id
        if ip not in out:
            out.append(ip)
    return out


async def checked_address(host: str, port: int, allow: AllowList) -> IPAddress:
    """The address to connect to, once the host is on the allow-list and every address it resolves
    to passed (internal ones only for a host named exactly). ToolError otherwise."""
    host = normalize_host(host)
    if not host:
        raise ToolError("INVALID_ARGUMENT", "the URL has no host")
    how = allow.match(host)
    if how is None:
        raise ToolError("PERMISSION_DENIED", f"host {host!r} is not on this server's allow-list")
    try:
        addresses = await resolve(host, port)
    except (OSError, socket.gaierror, UnicodeError) as exc:
        raise ToolError("UNAVAILABLE", f"cannot resolve {host!r}: {exc}") from None
    if not addresses:
        raise ToolError("UNAVAILABLE", f"{host!r} has no address")
    if how != "exact":
        internal = [str(a) for a in addresses if not is_public(a)]
        if internal:
            raise ToolError("PERMISSION_DENIED",
                            f"host {host!r} resolves to a non-public address ({', '.join(internal)}); "
                            "only hosts named exactly on the allow-list may")
    return addresses[0]
