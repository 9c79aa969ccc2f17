"""The patterns as an MCP server: the official `mcp` Python client over streamable HTTP at /mcp
through Envoy, with API keys on. Tools and their schemas come from the proto descriptors; judge
runs on the simulator mesh; a streaming pattern reports progress; keys and scopes apply."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import pytest
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client

from tests.gateway.keyed import KEYED_GROUP, KeyedMesh

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group(KEYED_GROUP)]

MODEL = "smollm2:135m"
PATTERNS = {"judge", "jury", "tooluse", "planexecute", "reflection", "collaboration"}


@asynccontextmanager
async def mcp_client(keyed: KeyedMesh, key: str | None = "admin") -> AsyncIterator[Client]:
    headers = keyed.headers(key) if key else {}
    async with httpx2.AsyncClient(headers=headers, timeout=60) as http, \
            Client(streamable_http_client(f"{keyed.url}/mcp", http_client=http)) as client:
        yield client


async def test_the_patterns_are_tools_with_schemas_from_their_descriptors(keyed_mesh: KeyedMesh) -> None:
    async with mcp_client(keyed_mesh) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert PATTERNS <= set(tools)
    judge = tools["judge"]
    props = judge.input_schema["properties"]
    assert {"question", "answer", "rubric", "mode", "model", "options"} <= set(props)
    assert props["mode"]["enum"][:2] == ["JUDGE_MODE_UNSPECIFIED", "JUDGE_MODE_POINTWISE"]
    assert props["options"]["properties"]["max_tokens"]["type"] == "integer"
    assert judge.input_schema["additionalProperties"] is False
    assert judge.output_schema is not None and "verdict" in judge.output_schema["properties"]
    assert "llmmesh.judge.v1.JudgeService/EvaluateStream" in (judge.description or "")
    # A one-shot call cannot wait for a human: those fields are not offered.
    assert "require_approval" not in tools["planexecute"].input_schema["properties"]
    assert "human_in_loop" not in tools["collaboration"].input_schema["properties"]


async def test_judge_runs_on_the_simulator_mesh(keyed_mesh: KeyedMesh) -> None:
    async with mcp_client(keyed_mesh) as client:
        result = await client.call_tool("judge", {"question": "What is 2+2?", "answer": "4", "model": MODEL,
                                                  "options": {"max_tokens": 64}})
    assert result.is_error is False
    verdict: Any = result.structured_content
    assert verdict["verdict"] in ("VERDICT_PASS", "VERDICT_FAIL") and verdict["judge"] == MODEL
    assert verdict["min_score"] <= verdict["score"] <= verdict["max_score"]
    assert verdict["usage"]["model_calls"] >= 1
    (text,) = result.content
    assert json.loads(text.text) == verdict  # type: ignore[union-attr]


async def test_a_streaming_pattern_reports_progress(keyed_mesh: KeyedMesh) -> None:
    updates: list[tuple[float, str | None]] = []

    async def progress(value: float, total: float | None, message: str | None) -> None:
        updates.append((value, message))

    panel = [{"name": f"juror{i}", "model": MODEL} for i in range(3)]
    async with mcp_client(keyed_mesh) as client:
        result = await client.call_tool("jury", {"question": "What is 2+2?", "answer": "4", "panel": panel,
                                                 "options": {"max_tokens": 64}}, progress_callback=progress)
    assert result.is_error is False
    assert len(result.structured_content["verdicts"]) == 3  # type: ignore[index]
    verdicts = [m for _, m in updates if m and m.startswith("juror_verdict: ")]
    assert len(verdicts) == 3
    assert {json.loads(m.removeprefix("juror_verdict: "))["juror"] for m in verdicts} == {"juror0", "juror1",
                                                                                            "juror2"}
    values = [v for v, _ in updates]
    assert values == sorted(values) and len(set(values)) == len(values)  # progress only goes up


async def test_bad_arguments_are_a_tool_error_naming_the_field(keyed_mesh: KeyedMesh) -> None:
    async with mcp_client(keyed_mesh) as client:
        typed = await client.call_tool("judge", {"question": 3, "answer": "4"})
        missing = await client.call_tool("judge", {"question": "", "answer": ""})
        interactive = await client.call_tool("planexecute", {"goal": "x", "require_approval": True})
    assert typed.is_error and "question" in typed.content[0].text  # type: ignore[union-attr]
    text = missing.content[0].text  # type: ignore[union-attr]
    assert missing.is_error and text.startswith("INVALID_ARGUMENT: ") and "question:" in text
    assert "evaluate." not in text  # named as the tool's arguments, not the stream's fields
    assert interactive.is_error and "require_approval" in interactive.content[0].text  # type: ignore[union-attr]


async def test_keys_and_scopes_apply(keyed_mesh: KeyedMesh) -> None:
    # Refused with 401 before anything runs; the SDK raises the JSON-RPC error (inside task groups).
    with pytest.raises(Exception) as err:
        async with mcp_client(keyed_mesh, key=None) as client:
            await client.list_tools()
    assert "missing API key" in repr(err.value)
    raw = httpx2.post(f"{keyed_mesh.url}/mcp", timeout=10, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                      headers={"authorization": "Bearer not-a-key", "accept": "application/json, text/event-stream"})
    assert raw.status_code == 401 and raw.headers["www-authenticate"].startswith("Bearer")
    assert raw.json()["error"]["message"] == "invalid API key"
    async with mcp_client(keyed_mesh, key="judge") as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert names == {"judge"}
        with pytest.raises(MCPError) as refused:
            await client.call_tool("jury", {"question": "q", "answer": "a"})
        assert "unknown tool" in refused.value.error.message
        result = await client.call_tool("judge", {"question": "What is 2+2?", "answer": "4", "model": MODEL})
        assert result.is_error is False
    # An inference-only key may list nothing and call nothing here.
    async with mcp_client(keyed_mesh, key="app") as client:
        assert (await client.list_tools()).tools == []
