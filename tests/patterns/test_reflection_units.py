"""Reflection's run logic against a fake model client: bounded steps, the loop guard on drafts,
a critique schema a small model can finish, repairs, and the caller's text checked against the
context window before any call."""

from __future__ import annotations

import json

import pytest

from llmmesh.framework.errors import InvalidArgument
from llmmesh.patterns.json_budget import token_budget
from llmmesh.patterns.model_info import ModelInfo, prime
from llmmesh.patterns.options import FREE_TEXT_FREQUENCY_PENALTY
from llmmesh.patterns.service import Intake, result_of
from llmmesh.reflection import prompts
from llmmesh.reflection.events import ReflectionResult, StopReason
from llmmesh.reflection.request import ReflectionRequest, from_proto
from llmmesh.reflection.run import run
from llmmesh.reflection.v1 import reflection_service_pb2 as pb
from llmmesh.settings import PatternLimits
from tests.support.fake_model import Call, FakeModelClient

TASK = "Write a slogan for a bakery"


async def request(**fields) -> ReflectionRequest:
    return await from_proto(pb.ImproveRequest(task=TASK, **fields), Intake(PatternLimits()))


async def improve_result(client: FakeModelClient, req: ReflectionRequest) -> ReflectionResult:
    return await result_of(run(client, req), ReflectionResult)


def critique(score: int, feedback: str = "Make it warmer.") -> str:
    return json.dumps({"feedback": feedback, "score": score})


def writer_or_critic(drafts: list[str], critiques: list[str]):
    """Drafts for free-text calls and critiques for schema calls, each in order."""
    def reply(call: Call) -> str:
        return (critiques if call.json_schema else drafts).pop(0)
    return reply


async def test_a_looping_draft_is_cut_to_its_first_occurrence_and_steps_are_bounded() -> None:
    client = FakeModelClient(reply=writer_or_critic(["Your Favorite Bakery. " * 60], [critique(9)]))
    result = await improve_result(client, await request(criteria="short, warm, memorable"))
    assert result.final_draft == "Your Favorite Bakery." and result.stop_reason is StopReason.THRESHOLD_REACHED
    draft, judged = client.calls
    assert result.usage.model_calls == 2  # the run's result carries the usage of its calls
    assert draft.sampling.max_tokens == prompts.DRAFT_TOKENS
    assert draft.sampling.frequency_penalty == FREE_TEXT_FREQUENCY_PENALTY
    assert "short, warm, memorable" in draft.messages[-1].content  # the writer knows the criteria
    assert judged.json_schema == prompts.CRITIQUE_SCHEMA
    assert judged.sampling.max_tokens == token_budget(prompts.CRITIQUE_SCHEMA)
    assert "Your Favorite Bakery." in judged.messages[-1].content and "Bakery. Your" not in judged.messages[-1].content


def test_the_critique_schema_bounds_its_text_and_asks_for_an_integer_score() -> None:
    props = prompts.CRITIQUE_SCHEMA["properties"]
    assert props["feedback"]["maxLength"] == prompts.MAX_FEEDBACK_CHARS
    assert props["score"] == {"type": "integer", "minimum": 0, "maximum": 10}
    assert list(props) == ["feedback", "score"]  # the score is written after the critique
    assert token_budget(prompts.CRITIQUE_SCHEMA) < 500


async def test_a_revision_gets_a_budget_that_fits_the_draft_and_sees_the_feedback() -> None:
    long_draft = " ".join(f"sentence{i}." for i in range(300))  # ~3300 characters
    client = FakeModelClient(reply=writer_or_critic([long_draft, "Warm bread, every morning."],
                                                    [critique(4, "FEEDBACK-SHORTER"), critique(9)]))
    result = await improve_result(client, await request(max_rounds=2))
    assert result.final_draft == "Warm bread, every morning." and result.rounds == 2
    revise = client.calls[2]
    assert revise.sampling.max_tokens == prompts.revision_budget(long_draft) > prompts.DRAFT_TOKENS
    assert "FEEDBACK-SHORTER" in revise.messages[-1].content


async def test_a_malformed_critique_is_repaired_with_the_problem_named() -> None:
    client = FakeModelClient(reply=writer_or_critic(["Fresh bread."], [
        json.dumps({"feedback": "ok", "score": 7.5}), critique(8)]))
    result = await improve_result(client, await request())
    assert result.final_score == 8
    repair = client.calls[2]
    assert repair.messages[-2].role == "assistant" and "integer" in repair.messages[-1].content


async def test_an_initial_draft_too_long_for_the_window_is_invalid_argument_before_any_call() -> None:
    client = FakeModelClient(["unused"])
    prime(client, ModelInfo("tiny:1b", 1024, native_tools=False))
    req = await from_proto(pb.ImproveRequest(task=TASK, initial_draft="word " * 1500),
                           Intake(PatternLimits(), prefix="improve."))
    with pytest.raises(InvalidArgument) as err:
        await improve_result(client, req)
    assert [v.field for v in err.value.violations] == ["improve.initial_draft"]
    assert "tiny:1b" in err.value.violations[0].description and client.calls == []


async def test_a_generated_draft_is_clipped_to_fit_the_critics_window() -> None:
    rambling = " ".join(f"idea{i}" for i in range(1200))  # ~8000 characters, more than a 1024-token window
    client = FakeModelClient(reply=writer_or_critic([rambling], [critique(9)]))
    prime(client, ModelInfo("tiny:1b", 1024, native_tools=False))
    result = await improve_result(client, await request())
    assert result.final_draft == rambling  # the draft itself is kept whole; only the critic's prompt is clipped
    critic_prompt = client.calls[1].messages[-1].content
    assert TASK in critic_prompt and "idea0 " in critic_prompt and "idea1199" not in critic_prompt
