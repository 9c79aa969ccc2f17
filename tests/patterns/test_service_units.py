"""The generic pattern servicer without a server: a run to its result, the unary and the stream
face of a declared pattern (the judge's), the usage its result carries, the field paths of each
face, and a tool pattern's registry."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from llmmesh.framework.errors import InvalidArgument
from llmmesh.judge.servicer import JudgeServicer
from llmmesh.judge.v1 import judge_service_pb2 as pb
from llmmesh.patterns.service import result_of
from llmmesh.settings import PatternLimits
from llmmesh.tooluse.servicer import ToolUseServicer
from llmmesh.tooluse.v1 import tooluse_service_pb2 as tooluse_pb
from tests.support.fake_model import FakeModelClient

VERDICT = json.dumps({"reasoning": "It matches the reference.", "score": 5})
REQUEST = pb.EvaluateRequest(question="What is the capital of France?", answer="Paris", ground_truth="Paris")


async def test_a_run_is_consumed_until_its_result_and_then_closed() -> None:
    closed = []

    async def events() -> AsyncIterator[object]:
        try:
            yield "progress"
            yield 42
            yield "after the result"
        finally:
            closed.append(True)

    assert await result_of(events(), int) == 42
    assert closed == [True]


async def test_a_run_that_ends_without_its_result_is_an_error_naming_it() -> None:
    async def events() -> AsyncIterator[object]:
        yield "progress"

    with pytest.raises(RuntimeError, match="without its int"):
        await result_of(events(), int)


async def test_the_unary_face_runs_to_the_result_and_reports_its_usage() -> None:
    client = FakeModelClient([VERDICT])
    resp = await JudgeServicer(client, PatternLimits()).Evaluate(REQUEST, None)
    assert (resp.score, resp.verdict, resp.judge) == (5, pb.VERDICT_PASS, "fake:1b")
    assert resp.usage.model_calls == 1 and resp.usage.output_tokens > 0
    assert len(client.calls) == 1


async def test_the_stream_face_converts_every_event_and_ends_with_the_result() -> None:
    async def requests() -> AsyncIterator[pb.EvaluateStreamRequest]:
        yield pb.EvaluateStreamRequest(evaluate=REQUEST)

    servicer = JudgeServicer(FakeModelClient([VERDICT]), PatternLimits())
    events = [e async for e in servicer.EvaluateStream(requests(), None)]
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds[-1] == "result" and set(kinds[:-1]) == {"reasoning"}
    assert "".join(e.reasoning.text for e in events[:-1]) == "It matches the reference."
    assert events[-1].result.verdict == pb.VERDICT_PASS and events[-1].result.usage.model_calls == 1


async def test_each_face_names_the_callers_fields_where_it_sent_them() -> None:
    servicer = JudgeServicer(FakeModelClient([VERDICT]), PatternLimits())
    with pytest.raises(InvalidArgument) as unary:
        await servicer.Evaluate(pb.EvaluateRequest(answer="Paris"), None)

    async def requests() -> AsyncIterator[pb.EvaluateStreamRequest]:
        yield pb.EvaluateStreamRequest(evaluate=pb.EvaluateRequest(answer="Paris"))

    with pytest.raises(InvalidArgument) as stream:
        [e async for e in servicer.EvaluateStream(requests(), None)]
    assert [v.field for v in unary.value.violations] == ["question"]
    assert [v.field for v in stream.value.violations] == ["evaluate.question"]


async def test_a_tool_pattern_gets_the_servers_tools_and_closes_them() -> None:
    servicer = ToolUseServicer(FakeModelClient(), PatternLimits())
    listed = await servicer.ListTools(tooluse_pb.ListToolsRequest(), None)
    assert {"calculator", "clock"} <= {t.name for t in listed.tools}
    await servicer.close()
