"""Fixtures: real simulator instances on 127.0.0.1 port 0, driven over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import ollama
import pytest

from llmmesh.simulator import RunningSimulator, SimulatorConfig, start_simulator


@pytest.fixture
async def start_sim() -> AsyncIterator[Any]:
    """``await start_sim(tokens=8, ...)`` starts a simulator; all are stopped after the test."""
    running: list[RunningSimulator] = []

    async def start(**config: Any) -> RunningSimulator:
        sim = await start_simulator(SimulatorConfig(**config), shutdown_timeout=0.5)
        running.append(sim)
        return sim

    yield start
    for sim in running:
        await sim.stop()


@pytest.fixture
async def sim(start_sim: Any) -> RunningSimulator:
    return await start_sim(tokens=8)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


@pytest.fixture
async def oc() -> AsyncIterator[Any]:
    """``oc(sim, headers=..., timeout=...)``: an official ``ollama.AsyncClient``, closed after the test."""
    clients: list[ollama.AsyncClient] = []

    def make(sim: RunningSimulator, timeout: float = 10, **kwargs: Any) -> ollama.AsyncClient:
        clients.append(ollama.AsyncClient(host=sim.url, timeout=timeout, **kwargs))
        return clients[-1]

    yield make
    for c in clients:
        await c.close()
