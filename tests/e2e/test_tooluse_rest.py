"""Tool use over REST through the real Envoy (gRPC-JSON transcoding): the tool loop as JSON, the
tool listing, field violations as HTTP 400, and the `:stream` route as SSE."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from llmmesh.launcher.up import Mesh
from tests.support.e2e import sse_events
from tests.support.mesh import scripted_mesh

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("tooluse_rest")]

RULES = [
    # The follow-up turn first: it matches only the tool result, the last message.
    {"match": "regex:^4$", "target": "last", "response": "The answer is 4."},
    {"match": "What is 2+2?", "tool_calls": [{"function": {"name": "calculator", "arguments": {"expression": "2+2"}}}]},
]
REQUEST = {"prompt": "What is 2+2?", "tools": ["calculator"]}


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    with scripted_mesh(tmp_path_factory.mktemp("tooluse-rest"), RULES) as mesh:
        yield mesh


@pytest.fixture(scope="module")
def rest(mesh: Mesh) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://{mesh.ingress}", timeout=60) as client:
        yield client


def test_execute_runs_the_tool_loop(rest: httpx.Client) -> None:
    resp = rest.post("/api/v1/tool-use/execute", json=REQUEST)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/json"
    body = resp.json()
    (call,) = body["calls"]
    (result,) = body["results"]
    assert (call["name"], call["arguments"], call["step"]) == ("calculator", {"expression": "2+2"}, 1)
    assert (result["call_id"], result["name"], result["output"]) == (call["call_id"], "calculator", "4")
    assert "error" not in result
    assert body["answer"].strip() == "The answer is 4."
    assert (body["steps"], body["stop_reason"], body["model"]) == (2, "STOP_REASON_ANSWERED", "smollm2:135m")
    assert body["usage"]["model_calls"] == 2


def test_tools_are_listed_with_their_schemas(rest: httpx.Client) -> None:
    resp = rest.get("/api/v1/tool-use/tools")
    assert resp.status_code == 200, resp.text
    tools = {t["name"]: t for t in resp.json()["tools"]}
    assert set(tools) >= {"calculator", "clock", "http_get"}
    assert tools["calculator"]["parameters"]["required"] == ["expression"]
    assert tools["clock"]["source"] == "builtin"


def test_an_unknown_tool_is_400_with_the_field(rest: httpx.Client) -> None:
    resp = rest.post("/api/v1/tool-use/execute", json={**REQUEST, "tools": ["calculator", "teleport"]})
    assert resp.status_code == 400, resp.text
    body = resp.json()
    (detail,) = [d for d in body["details"] if d["@type"] == "type.googleapis.com/google.rpc.BadRequest"]
    (violation,) = detail["field_violations"]
    assert violation["field"] == "tools[1]" and "teleport" in violation["description"]


def test_stream_is_sse_of_call_result_tokens_then_the_result(rest: httpx.Client) -> None:
    resp = rest.post("/api/v1/tool-use/execute:stream", json=[{"execute": REQUEST}])
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "text/event-stream"
    events = sse_events(resp.text)
    kinds = [next(iter(e)) for e in events]
    assert kinds[:2] == ["tool_call", "tool_result"] and kinds[-1] == "result"
    assert set(kinds[2:-1]) == {"answer"}
    assert events[1]["tool_result"]["output"] == "4"
    assert "".join(e["answer"]["text"] for e in events[2:-1]) == events[-1]["result"]["answer"]
