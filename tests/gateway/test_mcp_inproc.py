"""The MCP server in process, for the microservices case: the patterns run where
LLMMESH_PATTERNS_TARGET points, not at an inference-only target (which explains itself)."""

from __future__ import annotations

import dataclasses

import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from prometheus_client import CollectorRegistry

from llmmesh.settings import GatewaySettings, Settings
from tests.gateway.support import running_gateway
from tests.support.inproc import inproc_mesh
from tests.support.sims import sim

pytestmark = pytest.mark.xdist_group("gateway_inproc")

JUDGE = {"question": "What is 2+2?", "answer": "4", "model": "m"}


async def test_patterns_run_at_the_patterns_target(settings: Settings) -> None:
    async with inproc_mesh(settings, CollectorRegistry(), sim(name="a")) as inference_only, \
            inproc_mesh(dataclasses.replace(settings), CollectorRegistry(), sim(name="b"),
                        services=("inference", "judge")) as patterns:
        target = f"127.0.0.1:{patterns.port}"
        async with running_gateway(inference_only.port, patterns_target=target) as gw, \
                Client(streamable_http_client(f"{gw.url}/mcp")) as client:
            judged = await client.call_tool("judge", JUDGE)
        async with running_gateway(inference_only.port) as gw, \
                Client(streamable_http_client(f"{gw.url}/mcp")) as client:
            missing = await client.call_tool("judge", JUDGE)
    assert judged.is_error is False and judged.structured_content["judge"] == "m"  # type: ignore[index]
    text = missing.content[0].text  # type: ignore[union-attr]
    assert missing.is_error and text.startswith("UNIMPLEMENTED") and "LLMMESH_PATTERNS_TARGET" in text


def test_the_patterns_target_defaults_to_the_inference_target() -> None:
    assert GatewaySettings.from_env({}).patterns_target == ""
    s = GatewaySettings.from_env({"LLMMESH_PATTERNS_TARGET": "envoy:8080", "LLMMESH_API_KEYS_FILE": "/k.json"})
    assert (s.patterns_target, s.api_keys_file) == ("envoy:8080", "/k.json")
