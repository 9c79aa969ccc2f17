"""Helpers shared by the simulator tests (a uniquely named module: tests/ is not a package)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import ollama

from llmmesh.simulator import RunningSimulator

StartSim = Callable[..., Awaitable[RunningSimulator]]
MakeClient = Callable[..., ollama.AsyncClient]
MODEL = "smollm2:135m"


async def stats(http: httpx.AsyncClient, sim: RunningSimulator) -> dict[str, Any]:
    return (await http.get(f"{sim.url}/_sim/stats")).json()


async def wait_for_stats(
    http: httpx.AsyncClient, sim: RunningSimulator, predicate: Callable[[dict[str, Any]], bool], within: float = 2.0
) -> dict[str, Any]:
    """Poll /_sim/stats until ``predicate`` holds; returns the last snapshot either way."""
    deadline = time.monotonic() + within
    while True:
        snapshot = await stats(http, sim)
        if predicate(snapshot) or time.monotonic() > deadline:
            return snapshot
        await asyncio.sleep(0.02)
