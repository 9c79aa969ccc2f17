"""Helpers shared by the client tests: simulator configs and event plumbing."""

from __future__ import annotations

from typing import Any

from tests.support.rpc import collect
from tests.support.sims import cancelled, sim

__all__ = ["MODEL", "cancelled", "collect", "kinds", "sim", "target", "text"]

MODEL = "m"  # what `sim` serves by default


def target(mesh: Any) -> str:
    return f"127.0.0.1:{mesh.port}"


def kinds(events: list[Any], oneof: str = "event") -> list[str]:
    return [e.WhichOneof(oneof) for e in events]


def text(events: list[Any], field: str = "delta") -> str:
    return "".join(getattr(e, field).text for e in events if e.WhichOneof("event") == field)

