"""Real simulator instances on loopback ports, controlled over their HTTP control API."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx

from llmmesh.simulator.config import ScriptRule, SimulatorConfig
from llmmesh.simulator.runner import RunningSimulator, start_simulator


def sim(*rules: ScriptRule, name: str = "a", models: tuple[str, ...] = ("m",), **overrides: Any) -> SimulatorConfig:
    """A simulator named `name` (a backend of that name) serving `models`, answering by `rules`."""
    return SimulatorConfig(name=name, models=models, scripts=rules, **overrides)


async def start_sims(*configs: SimulatorConfig) -> list[RunningSimulator]:
    return [await start_simulator(c) for c in configs]


async def set_fault(running: RunningSimulator, spec: str) -> None:
    async with httpx.AsyncClient() as http:
        resp = await http.put(f"{running.url}/_sim/faults", json={"spec": spec})
        resp.raise_for_status()


async def stats(running: RunningSimulator) -> dict[str, Any]:
    async with httpx.AsyncClient() as http:
        return (await http.get(f"{running.url}/_sim/stats")).json()


async def cancelled(running: RunningSimulator) -> int:
    """Generations the simulator saw its caller cancel (the mesh closed the backend request)."""
    return (await stats(running))["cancelled"]


async def eventually(predicate: Callable[[], Any], timeout_s: float = 5.0, interval_s: float = 0.05) -> Any:
    """Poll an (async) predicate until it returns something truthy; fail after timeout_s."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s (last value {value!r})")
        await asyncio.sleep(interval_s)
