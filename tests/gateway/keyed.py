"""The simulator mesh with API keys on that the Ollama and MCP front-door tests share (the
`keyed_mesh` fixture, tests/gateway/conftest.py): its keys, scripts and addresses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from llmmesh.launcher.up import Mesh
from tests.support.e2e import wait_until

# One xdist group: one mesh per worker for every module using it.
KEYED_GROUP = "gateway_keyed_mesh"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
RULES = [
    {"match": "capital of France", "response": "Paris is the capital of France."},
    {"match": "SLOW-ANSWER", "response": " ".join(["tick"] * 40), "fault": "token_delay_ms=50"},
]


@dataclass
class KeyedMesh:
    mesh: Mesh
    keys: dict[str, str]

    @property
    def url(self) -> str:
        return f"http://{self.mesh.ingress}"

    @property
    def sim(self) -> str:
        return f"http://127.0.0.1:{self.mesh.options.backend_port}"

    def headers(self, key: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self.keys[key]}"}


def one_cancelled_generation(sim: str) -> dict[str, Any]:
    """The simulator's stats (at `sim`) once it counts one generation cancelled and none in flight:
    a front door that lost its client stopped the model. Nothing may have completed."""

    def cancelled() -> dict[str, Any] | None:
        stats = httpx.get(f"{sim}/_sim/stats", timeout=5).json()
        return stats if stats["cancelled"] == 1 and stats["in_flight"] == 0 else None

    stats = wait_until(cancelled, 30, "the simulator to count the generation as cancelled")
    assert stats["completed"] == 0
    return stats
