"""Typed readers of environment values for llmmesh.settings: each takes the environment, the
variable's name and its default, and fails with a SettingsError that names the variable."""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit


class SettingsError(ValueError):
    pass


def text(env: Mapping[str, str], name: str, default: str) -> str:
    return env.get(name, default).strip()


def _parse_int(name: str, raw: str, minimum: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer") from None
    if value < minimum:
        raise SettingsError(f"{name}={value} must be >= {minimum}")
    return value


def integer(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    return _parse_int(name, text(env, name, str(default)), minimum)


def port_or_off(env: Mapping[str, str], name: str, default: int | None) -> int | None:
    """A port; `off` (or an empty value) is None."""
    raw = text(env, name, "off" if default is None else str(default))
    return None if raw in ("", "off") else _parse_int(name, raw, 0)


def number(env: Mapping[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    raw = text(env, name, str(default))
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None
    if value < minimum:
        raise SettingsError(f"{name}={value} must be >= {minimum}")
    return value


_BOOLS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


def flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = text(env, name, str(default).lower()).lower()
    if raw not in _BOOLS:
        raise SettingsError(f"{name}={raw!r} is not a boolean (true/false, on/off, 1/0)")
    return _BOOLS[raw]


def items(env: Mapping[str, str], name: str, default: str = "") -> tuple[str, ...]:
    return tuple(tok.strip() for tok in text(env, name, default).split(",") if tok.strip())


def pairs(env: Mapping[str, str], name: str) -> tuple[tuple[str, str], ...]:
    """`a=b,c=d` → (("a", "b"), ("c", "d"))."""
    out = []
    for tok in items(env, name):
        key, sep, value = tok.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise SettingsError(f"{name}: {tok!r} is not of the form name=value")
        out.append((key.strip(), value.strip()))
    return tuple(out)


_DEFAULT_PORTS = {"http": 80, "https": 443}


def web_origin(text: str) -> str:
    """`scheme://host[:port]` as a browser sends it in `Origin` (lower case, no default port, no
    path), which is what Envoy's CORS filter compares exactly; ValueError for anything else."""
    try:
        parts = urlsplit(text.strip().removesuffix("/"))
        port = parts.port
    except ValueError:
        parts, port = None, None
    if (parts is None or parts.scheme.lower() not in _DEFAULT_PORTS or not parts.hostname or parts.path
            or parts.query or parts.fragment or parts.username is not None or "*" in text):
        raise ValueError(f"{text!r} is not an origin: expected http(s)://host[:port], no path or wildcard")
    scheme, host = parts.scheme.lower(), parts.hostname
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}" + ("" if port in (None, _DEFAULT_PORTS[scheme]) else f":{port}")


def origins(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    try:
        return tuple(dict.fromkeys(web_origin(tok) for tok in items(env, name)))
    except ValueError as exc:
        raise SettingsError(f"{name}: {exc}") from None


# An MCP server's name prefixes its tools' names (`<name>.<tool>`), which model APIs bound.
_MCP_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


def mcp_servers(env: Mapping[str, str], name: str) -> tuple[tuple[str, str], ...]:
    """`name=http(s)://host[:port]/path,…`: distinct names, http or https URLs."""
    servers = pairs(env, name)
    for server, url in servers:
        if not _MCP_NAME.match(server):
            raise SettingsError(f"{name}: server name {server!r} must match {_MCP_NAME.pattern}")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SettingsError(f"{name}: {url!r} is not an http:// or https:// URL")
    names = [server for server, _ in servers]
    if len(set(names)) != len(names):
        raise SettingsError(f"{name}: duplicate server names in {names}")
    return servers
