"""Which hosts and addresses the http_get tool may reach.

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
