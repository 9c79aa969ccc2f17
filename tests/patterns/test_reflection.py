"""Reflection (Self-Refine) against a real server and scripted simulators: each stop reason, the
exact history, the stream's event order, malformed critiques, validation and cancellation."""

from __future__ import annotations

import json
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from llmmesh.common.v1 import common_pb2
from llmmesh.reflection.v1 import reflection_service_pb2 as pb
from llmmesh.reflection.v1 import reflection_service_pb2_grpc as pb_grpc
from llmmesh.settings import CacheSettings
from llmmesh.simulator.config import ScriptRule, SimulatorConfig
from tests.support.rpc import violations
from tests.support.sims import cancelled, eventually, sim, stats

TASK = "Write a slogan for the TASK-BAKERY."
CRITERIA = "CRITERIA-PUNCHY: short and memorable"
DRAFTS = ("DRAFT-ONE Bread.", "DRAFT-TWO Fresh bread daily.", "DRAFT-THREE Warm bread, every morning.")
FEEDBACK = ("FEEDBACK-ONE too bland", "FEEDBACK-TWO needs warmth", "FEEDBACK-THREE fine")
MODELS = ("writer", "critic")


def critique(i: int, score: float) -> dict[str, Any]:
    return {"score": score, "feedback": FEEDBACK[i]}


def script(*scores: float, critic: str | None = None) -> tuple[ScriptRule, ...]:
    """Writer and reviser answers keyed on the feedback they must be given; critiques keyed on the
    draft (and the criteria) they must be shown. Specific rules first: a revision prompt contains
    both the draft and its feedback."""
    revisions = [ScriptRule(match=FEEDBACK[i], response=DRAFTS[i + 1]) for i in (1, 0)]
    critiques = [ScriptRule(match=f"regex:(?s)CRITERIA-PUNCHY.*{DRAFTS[i].split()[0]}",
                            response=json.dumps(critique(i, scores[i])), model=critic)
                 for i in reversed(range(len(scores)))]
    return (*revisions, *critiques, ScriptRule(match="TASK-BAKERY", response=DRAFTS[0]))


def request(**overrides: Any) -> pb.ImproveRequest:
    fields: dict[str, Any] = {"task": TASK, "model": "writer", "criteria": CRITERIA, **overrides}
    return pb.ImproveRequest(**fields)


def history(resp: pb.ImproveResponse) -> list[tuple[int, str, float, str]]:
    return [(h.round, h.draft, h.score, h.feedback) for h in resp.history]


async def improve(mesh_rules: tuple[ScriptRule, ...], inference_mesh, **overrides: Any) -> pb.ImproveResponse:
    async with inference_mesh(sim(*mesh_rules, models=MODELS), services=("inference", "reflection")) as m:
        return await pb_grpc.ReflectionServiceStub(m.channel).Improve(request(**overrides), timeout=30)


async def test_threshold_reached_on_the_revision_with_the_critic_model(inference_mesh) -> None:
    # Critiques are scripted for the critic model only: the writer would answer them with prose,
    # which is not valid critique JSON, so the run only succeeds if critic_model is used.
    resp = await improve(script(5, 9, critic="critic"), inference_mesh, critic_model="critic")
    assert resp.stop_reason == pb.REFLECTION_STOP_REASON_THRESHOLD_REACHED
    assert history(resp) == [(1, DRAFTS[0], 5.0, FEEDBACK[0]), (2, DRAFTS[1], 9.0, FEEDBACK[1])]
    assert (resp.final_draft, resp.final_score, resp.rounds) == (DRAFTS[1], 9.0, 2)
    assert resp.model.startswith("writer")
    # write, critique, revise, critique: nothing after the threshold is reached.
    assert resp.usage.model_calls == 4 and resp.usage.output_tokens > 0


async def test_max_rounds_when_scores_improve_but_stay_below_the_threshold(inference_mesh) -> None:
    resp = await improve(script(3, 5, 7), inference_mesh, max_rounds=3)
    assert resp.stop_reason == pb.REFLECTION_STOP_REASON_MAX_ROUNDS
    assert history(resp) == [(1, DRAFTS[0], 3.0, FEEDBACK[0]), (2, DRAFTS[1], 5.0, FEEDBACK[1]),
                             (3, DRAFTS[2], 7.0, FEEDBACK[2])]
    assert (resp.final_draft, resp.final_score, resp.rounds) == (DRAFTS[2], 7.0, 3)
    assert resp.usage.model_calls == 6  # the last critique is not followed by a revision


async def test_a_worse_revision_stops_and_the_earlier_draft_wins(inference_mesh) -> None:
    resp = await improve(script(6, 4, 10), inference_mesh, max_rounds=3)
    assert resp.stop_reason == pb.REFLECTION_STOP_REASON_NO_IMPROVEMENT
    assert history(resp) == [(1, DRAFTS[0], 6.0, FEEDBACK[0]), (2, DRAFTS[1], 4.0, FEEDBACK[1])]
    assert (resp.final_draft, resp.final_score, resp.rounds) == (DRAFTS[0], 6.0, 2)
    assert resp.usage.model_calls == 4  # no third round although one was allowed (and would score 10)


async def test_an_equal_score_counts_as_no_improvement(inference_mesh) -> None:
    resp = await improve(script(6, 6), inference_mesh, max_rounds=3, score_threshold=9.5)
    assert resp.stop_reason == pb.REFLECTION_STOP_REASON_NO_IMPROVEMENT
    assert (resp.final_draft, resp.final_score) == (DRAFTS[0], 6.0)


async def test_initial_draft_is_critiqued_without_writing_one(inference_mesh) -> None:
    resp = await improve(script(9), inference_mesh, initial_draft=DRAFTS[0])
    assert resp.stop_reason == pb.REFLECTION_STOP_REASON_THRESHOLD_REACHED  # default threshold 8
    assert history(resp) == [(1, DRAFTS[0], 9.0, FEEDBACK[0])]
    assert resp.usage.model_calls == 1


def kinds(events: list[pb.ImproveStreamResponse]) -> list[str]:
    """Event kinds with runs of deltas collapsed into one "delta"."""
    out: list[str] = []
    for e in events:
        kind = e.WhichOneof("event")
        if not (kind == "delta" and out and out[-1] == "delta"):
            out.append(kind)
    return out


async def collect(call: Any) -> list[pb.ImproveStreamResponse]:
    events = []
    async for event in call:
        events.append(event)
    return events


async def test_stream_emits_drafts_as_tokens_then_critiques_then_the_result(inference_mesh) -> None:
    async with inference_mesh(sim(*script(5, 9), models=MODELS), services=("inference", "reflection")) as m:
        call = pb_grpc.ReflectionServiceStub(m.channel).ImproveStream(
            iter([pb.ImproveStreamRequest(improve=request())]), timeout=30)
        events = await collect(call)
    assert kinds(events) == ["delta", "draft", "critique", "delta", "draft", "critique", "result"]
    drafts = [e.draft for e in events if e.HasField("draft")]
    assert [(d.round, d.text) for d in drafts] == [(1, DRAFTS[0]), (2, DRAFTS[1])]
    # Each draft's tokens arrive before it and add up to it (how many messages carry them is the
    # relay's choice: deltas queued behind a lagging reader go out joined).
    first_draft = events.index(next(e for e in events if e.HasField("draft")))
    assert "".join(e.delta.text for e in events[:first_draft]) == DRAFTS[0]
    critiques = [(e.critique.round, e.critique.score, e.critique.feedback) for e in events if e.HasField("critique")]
    assert critiques == [(1, 5.0, FEEDBACK[0]), (2, 9.0, FEEDBACK[1])]
    result = events[-1].result
    assert result.stop_reason == pb.REFLECTION_STOP_REASON_THRESHOLD_REACHED
    assert result.final_draft == DRAFTS[1] and len(result.history) == 2
    assert result.usage.model_calls == 4  # usage counted across every step of the stream


async def test_malformed_critique_is_an_error_not_an_invented_score(inference_mesh) -> None:
    rules = (ScriptRule(match="Draft to critique", response='{"score": "great", "feedback": "x"}'),
             ScriptRule(match="TASK-BAKERY", response=DRAFTS[0]))
    # The same run twice, its model calls counted: no response cache in between.
    async with inference_mesh(sim(*rules, models=MODELS), services=("inference", "reflection"),
                              limits={"json_attempts": 2}, cache=CacheSettings(enabled=False)) as m:
        stub = pb_grpc.ReflectionServiceStub(m.channel)
        events = []
        with pytest.raises(grpc.aio.AioRpcError) as err:
            async for event in stub.ImproveStream(iter([pb.ImproveStreamRequest(improve=request())]), timeout=30):
                events.append(event)
        with pytest.raises(grpc.aio.AioRpcError) as unary_err:
            await stub.Improve(request(), timeout=30)
        (sim_,) = m.sims
        recent = (await stats(sim_))["recent"]
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert kinds(events) == ["delta", "draft", "error"]  # no critique, no result
    error = events[-1].error
    assert error.code == grpc.StatusCode.UNAVAILABLE.value[0] and "malformed" in error.message
    info = error_details_pb2.ErrorInfo()
    assert error.details[0].Unpack(info) and info.reason == "MALFORMED_MODEL_OUTPUT"
    assert info.metadata["attempts"] == "2"
    assert unary_err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert rpc_status.from_call(unary_err.value).details[0].Unpack(info) and info.reason == "MALFORMED_MODEL_OUTPUT"
    # Per run: the draft, then exactly json_attempts critique attempts, then nothing more.
    assert len(recent) == 6


async def test_every_invalid_field_is_reported_at_once(inference_mesh) -> None:
    bad = pb.ImproveRequest(task=" ", max_rounds=9, score_threshold=10.5, initial_draft="x" * 101,
                            options=common_pb2.GenerationOptions(max_tokens=300, temperature=3))
    async with inference_mesh(sim(models=MODELS), services=("inference", "reflection"),
                              limits={"max_rounds": 5, "max_text_chars": 100, "max_output_tokens": 200}) as m:
        stub = pb_grpc.ReflectionServiceStub(m.channel)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.Improve(bad, timeout=30)
        with pytest.raises(grpc.aio.AioRpcError) as stream_err:
            async for _ in stub.ImproveStream(iter([pb.ImproveStreamRequest(improve=bad)]), timeout=30):
                pass
        (sim_,) = m.sims
        started = (await stats(sim_))["started"]
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    found = violations(err.value)
    assert set(found) == {"task", "max_rounds", "score_threshold", "initial_draft", "options.max_tokens",
                          "options.temperature"}
    assert "5" in found["max_rounds"] and "200" in found["options.max_tokens"]
    assert stream_err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "improve.task" in violations(stream_err.value)
    assert started == 0  # nothing reached a model


async def test_cancel_mid_draft_stops_the_model_call(inference_mesh) -> None:
    async with inference_mesh(SimulatorConfig(name="a", models=("writer",), token_delay_s=0.05, tokens=200),
                              services=("inference", "reflection")) as m:
        call = pb_grpc.ReflectionServiceStub(m.channel).ImproveStream(timeout=60)
        await call.write(pb.ImproveStreamRequest(improve=request(criteria="")))
        first = await call.read()
        assert first.HasField("delta")
        await call.write(pb.ImproveStreamRequest(cancel=common_pb2.Cancel(reason="enough")))
        events = await read_until_end(call)
        code = await call.code()
        (sim_,) = m.sims
        closed = await eventually(lambda: cancelled(sim_), timeout_s=15)
    assert events and events[-1].HasField("error")
    assert all(e.HasField("delta") for e in events[:-1])
    assert events[-1].error.code == grpc.StatusCode.CANCELLED.value[0] and "enough" in events[-1].error.message
    assert code == grpc.StatusCode.CANCELLED
    assert closed >= 1


async def read_until_end(call: Any) -> list[Any]:
    """Every remaining event; the stream's final status stays on `call`."""
    events = []
    try:
        while (event := await call.read()) is not grpc.aio.EOF:
            events.append(event)
    except grpc.aio.AioRpcError:
        pass
    return events


async def test_an_initial_draft_too_long_for_the_models_window_is_invalid_argument(inference_mesh) -> None:
    config = SimulatorConfig(name="a", models=("writer",), context_length=1024)
    async with inference_mesh(config, services=("inference", "reflection")) as m:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await pb_grpc.ReflectionServiceStub(m.channel).Improve(request(initial_draft="word " * 1200), timeout=30)
        (sim_,) = m.sims
        started = (await stats(sim_))["started"]
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    found = violations(err.value)
    assert set(found) == {"initial_draft"} and "writer" in found["initial_draft"] and "1024" in found["initial_draft"]
    assert started == 0
