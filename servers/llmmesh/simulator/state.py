"""Mutable runtime state of one simulator instance, shared by all handlers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from aiohttp import web

from llmmesh.simulator.config import SimulatorConfig
from llmmesh.simulator.faults import InstanceFaults
from llmmesh.simulator.models import ModelCatalog
from llmmesh.simulator.scripts import ScriptBook
from llmmesh.simulator.stats import Stats


@dataclass
class SimulatorState:
    config: SimulatorConfig
    catalog: ModelCatalog
    faults: InstanceFaults
    scripts: ScriptBook
    stats: Stats = field(default_factory=Stats)
    generations: int = 0  # requests currently holding a generation slot
    closing: asyncio.Event = field(default_factory=asyncio.Event)  # set on shutdown; ends hangs

    @classmethod
    def from_config(cls, config: SimulatorConfig) -> SimulatorState:
        return cls(
            config=config,
            catalog=ModelCatalog(config.models, config.preload, config.context_length),
            faults=InstanceFaults(config.fault, seed=config.fault_seed),
            scripts=ScriptBook(config.scripts),
        )

    @contextmanager
    def generation_slot(self, limit: int) -> Iterator[bool]:
        """Yields False when ``limit`` (> 0) generations already run: the caller answers 503."""
        if limit > 0 and self.generations >= limit:
            yield False
            return
        self.generations += 1
        self.stats.generation_started(self.generations)
        try:
            yield True
        finally:
            self.generations -= 1


STATE = web.AppKey("llmmesh_simulator_state", SimulatorState)
