"""Helpers shared by the client tests: simulator configs and event plumbing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from llmmesh.simulator.config import ScriptRule, SimulatorConfig
from tests.support.sims import stats

MODEL = "m"


def sim(*rules: ScriptRule, name: str = "a", **overrides: Any) -> SimulatorConfig:
    return SimulatorConfig(name=name, models=(MODEL,), scripts=rules, **overrides)


def target(mesh: Any) -> str:
    return f"127.0.0.1:{mesh.port}"


async def collect(events: AsyncIterator[Any]) -> list[Any]:
    return [e async for e in events]


def kinds(events: list[Any], oneof: str = "event") -> list[str]:
    return [e.WhichOneof(oneof) for e in events]


def text(events: list[Any], field: str = "delta") -> str:
    return "".join(getattr(e, field).text for e in events if e.WhichOneof("event") == field)


async def cancelled(sim_: Any) -> int:
    return (await stats(sim_))["cancelled"]
