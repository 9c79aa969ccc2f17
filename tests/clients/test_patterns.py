"""The six pattern services through the SDK, against real servers and scripted simulators.

These check the client surface (keyword requests, short enum names, typed events, stream
controls, errors raised from `error` events), not the patterns' logic, which tests/patterns owns.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from llmmesh.simulator.config import ScriptRule
from llmmesh_client import (
    AbortedError,
    AsyncLlmMesh,
    CancelledError,
    LlmMesh,
    MalformedModelOutputError,
    collaboration_pb2,
    judge_pb2,
    jury_pb2,
    planexecute_pb2,
    reflection_pb2,
    tooluse_pb2,
)
from tests.clients.support import MODEL, cancelled, kinds, sim, target
from tests.support.sims import eventually


def verdict(score: float, reasoning: str = "Scripted reasoning.") -> str:
    return json.dumps({"reasoning": reasoning, "score": score})


async def test_judge_unary_stream_and_criteria(inference_mesh) -> None:
    async with inference_mesh(sim(ScriptRule(match="", response=verdict(4))), services=("inference", "judge")) as m, \
            AsyncLlmMesh(target(m)) as client:
        result = await client.judge.evaluate(question="Capital of France?", answer="Paris.", model=MODEL,
                                             judge_type="factual", contexts=["Paris is the capital."])
        run = client.judge.evaluate_stream(question="Capital of France?", answer="Paris.", model=MODEL)
        events = [e async for e in run]
        criteria = await client.judge.list_criteria()
    assert (result.score, result.verdict, result.criterion) == (4, judge_pb2.VERDICT_PASS, "factual")
    assert result.reasoning == "Scripted reasoning."
    assert set(kinds(events)) == {"reasoning", "result"} and kinds(events)[-1] == "result"
    assert events[-1].result.score == 4 and run.result_event is events[-1]
    assert {"factual", "clarity", "safety"} <= {c.name for c in criteria.criteria}


async def test_malformed_model_output_is_raised_from_unary_and_stream(inference_mesh) -> None:
    async with inference_mesh(sim(ScriptRule(match="", response="no json here")), services=("inference", "judge")) \
            as m, AsyncLlmMesh(target(m)) as client:
        with pytest.raises(MalformedModelOutputError) as unary:
            await client.judge.evaluate(question="q", answer="x", model=MODEL)
        with pytest.raises(MalformedModelOutputError) as streamed:
            await client.judge.evaluate_stream(question="q", answer="x", model=MODEL).result()
    for err in (unary.value, streamed.value):
        assert err.reason == "MALFORMED_MODEL_OUTPUT" and err.error_info is not None


async def test_jury_streams_each_juror_then_the_aggregate(inference_mesh) -> None:
    panel = [{"model": MODEL, "criterion": "factual"}, {"model": MODEL, "criterion": "clarity"},
             {"model": MODEL, "criterion": "relevance", "name": "third"}]
    async with inference_mesh(sim(ScriptRule(match="", response=verdict(5))), services=("inference", "jury")) as m, \
            AsyncLlmMesh(target(m)) as client:
        async with client.jury.evaluate_stream(question="2+2?", answer="4", panel=panel, aggregation="median") as run:
            events = [e async for e in run]
    assert kinds(events) == ["juror_verdict"] * 3 + ["result"]
    assert {e.juror_verdict.juror for e in events[:3]} == {"m/factual", "m/clarity", "third"}
    result = events[-1].result
    assert result.aggregation == jury_pb2.AGGREGATION_MEDIAN and result.verdict == jury_pb2.VERDICT_PASS
    assert result.score == 1


LOOP = (ScriptRule(match="regex:^5$", target="last", response="The answer is 5."),
        ScriptRule(match="What is 2+3?", tool_calls=({"function": {"name": "calculator",
                                                                    "arguments": {"expression": "2+3"}}},)))


async def test_tool_use_events_and_tools(inference_mesh) -> None:
    async with inference_mesh(sim(*LOOP), services=("inference", "tooluse")) as m, \
            AsyncLlmMesh(target(m)) as client:
        events = [e async for e in client.tooluse.execute_stream(prompt="What is 2+3?", model=MODEL,
                                                                  tools=["calculator"])]
        tools = await client.tooluse.list_tools()
    order = kinds(events)
    assert order[:2] == ["tool_call", "tool_result"] and order[-1] == "result" and "answer" in order
    assert events[1].tool_result.output == "5"
    result = events[-1].result
    assert result.answer.strip() == "The answer is 5." and result.stop_reason == tooluse_pb2.STOP_REASON_ANSWERED
    assert "calculator" in {t.name for t in tools.tools}


# Prompt markers of llmmesh.planexecute.prompts (as in tests/patterns/test_planexecute.py).
PLAN_RULES = (ScriptRule(match="Write the final answer to the goal", response="approved answer"),
              ScriptRule(match="You are the planner", response=json.dumps({"steps": [
                  {"id": "s1", "description": "Proposed work", "kind": "model"}]})),
              ScriptRule(match="Proposed work", response="P1 DONE"),
              ScriptRule(match="Edited", response="E1 DONE"))


async def test_plan_approve_edit_and_reject(inference_mesh) -> None:
    async with inference_mesh(sim(*PLAN_RULES), services=("inference", "planexecute")) as m, \
            AsyncLlmMesh(target(m)) as client:
        approved: list[Any] = []
        async with client.planexecute.run_stream(goal="GOAL", model=MODEL, require_approval=True) as run:
            async for event in run:
                approved.append(event)
                if event.HasField("plan") and event.plan.awaiting_approval:
                    await run.approve()

        edited = client.planexecute.run_stream(goal="GOAL", model=MODEL, require_approval=True)
        async for event in edited:
            if event.HasField("plan") and event.plan.awaiting_approval:
                await edited.edit({"steps": [{"id": "e1", "description": "Edited", "kind": "model"}]})
        edited_result = await edited.result()

        rejected = client.planexecute.run_stream(goal="GOAL", model=MODEL, require_approval=True)
        with pytest.raises(AbortedError) as err:
            async for event in rejected:
                if event.HasField("plan"):
                    await rejected.reject("too risky")
    assert approved[0].plan.awaiting_approval and [s.id for s in approved[0].plan.plan.steps] == ["s1"]
    assert approved[-1].result.answer.strip() == "approved answer"
    assert [s.step_id for s in approved[-1].result.steps] == ["s1"]
    assert [(s.step_id, s.status) for s in edited_result.steps] == [("e1", planexecute_pb2.STEP_STATUS_SUCCEEDED)]
    assert err.value.reason == "PLAN_REJECTED" and "too risky" in err.value.message


REFLECTION_RULES = (ScriptRule(match="Draft to critique", response=json.dumps({"score": 9, "feedback": "Crisp."})),
                    ScriptRule(match="TASK-SLOGAN", response="Warm bread daily."))


async def test_reflection_stream_and_cancel(inference_mesh) -> None:
    async with inference_mesh(sim(*REFLECTION_RULES), services=("inference", "reflection")) as m, \
            AsyncLlmMesh(target(m)) as client:
        run = client.reflection.improve_stream(task="Write a TASK-SLOGAN", model=MODEL, score_threshold=8)
        events = [e async for e in run]
        unary = await client.reflection.improve(task="Write a TASK-SLOGAN", model=MODEL, score_threshold=8)
    assert kinds(events)[-3:] == ["draft", "critique", "result"] and "delta" in kinds(events)
    assert events[-2].critique.score == 9
    for result in (events[-1].result, unary):
        assert result.final_draft.strip() == "Warm bread daily."
        assert result.stop_reason == reflection_pb2.REFLECTION_STOP_REASON_THRESHOLD_REACHED


async def test_cancel_stops_a_pattern_run_and_raises_cancelled(inference_mesh) -> None:
    async with inference_mesh(sim(token_delay_s=0.05, tokens=200), services=("inference", "reflection")) as m, \
            AsyncLlmMesh(target(m)) as client:
        run = client.reflection.improve_stream(task="write at length", model=MODEL)
        seen = 0
        with pytest.raises(CancelledError) as err:
            async for event in run:
                seen += 1
                if event.HasField("delta") and seen == 1:
                    await run.cancel("enough")
        assert await eventually(lambda: cancelled(m.sims[0]), timeout_s=10) == 1
    assert "enough" in err.value.message and seen < 50


COLLAB_RULES = (ScriptRule(match="regex:(?s)ROLE-A.*HUMAN-SAYS", response="A heard the human"),
                ScriptRule(match="regex:(?s)ROLE-B.*HUMAN-SAYS", response="B heard the human"),
                ScriptRule(match="ROLE-A", response="A first"),
                ScriptRule(match="ROLE-B", response="B first"))


async def test_collaboration_human_turn_helper(inference_mesh) -> None:
    agents = [{"name": n, "system_prompt": f"ROLE-{n.upper()}: you are {n}.", "model": MODEL} for n in "ab"]
    async with inference_mesh(sim(*COLLAB_RULES), services=("inference", "collaboration")) as m, \
            AsyncLlmMesh(target(m)) as client:
        run = client.collaboration.run_stream(task="discuss", agents=agents, strategy="round-robin", rounds=2,
                                              human_in_loop=True)
        prompts = 0
        async for event in run:
            if event.HasField("awaiting_human"):
                prompts += 1
                await run.human("HUMAN-SAYS hello" if prompts == 1 else "")
        result = run.result_event.result  # type: ignore[union-attr]
    transcript = [(t.agent, t.content, t.human) for t in result.transcript]
    assert transcript == [("a", "A first", False), ("b", "B first", False), ("human", "HUMAN-SAYS hello", True),
                          ("a", "A heard the human", False), ("b", "B heard the human", False)]
    assert result.strategy == collaboration_pb2.STRATEGY_ROUND_ROBIN and prompts >= 1


async def test_sync_pattern_streams_and_helpers(inference_mesh) -> None:
    """The sync facades of the run streams: iteration, approve(), result()."""
    catch_all = ScriptRule(match="", response="no json here")  # what the judge gets
    async with inference_mesh(sim(*PLAN_RULES, catch_all), services=("inference", "planexecute", "judge")) as m:

        def use() -> tuple[list[str], str, str]:
            with LlmMesh(target(m)) as client:
                order = []
                with client.planexecute.run_stream(goal="GOAL", model=MODEL, require_approval=True) as run:
                    for event in run:
                        order.append(event.WhichOneof("event"))
                        if event.HasField("plan") and event.plan.awaiting_approval:
                            run.approve()
                answer = client.planexecute.run(goal="GOAL", model=MODEL).answer
                with pytest.raises(MalformedModelOutputError) as err:
                    client.judge.evaluate_stream(question="q", answer="x", model=MODEL).result()
            return order, answer, err.value.reason

        order, answer, reason = await asyncio.wait_for(asyncio.to_thread(use), 60)
    assert order[0] == "plan" and order[-1] == "result" and "step_result" in order
    assert answer.strip() == "approved answer" and reason == "MALFORMED_MODEL_OUTPUT"
