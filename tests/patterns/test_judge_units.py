"""The judge's and the jury's run logic against a fake model client: bounded verdict schemas and
budgets, repairs, the loop guard on reasoning, the resolved model in errors, the caller's text
checked against the context window, and the jury's default panel."""

from __future__ import annotations

import json

import pytest

from llmmesh.framework.errors import InvalidArgument, MeshError
from llmmesh.judge import prompts, request
from llmmesh.judge.criteria import BUILTINS, Anchor, Criterion
from llmmesh.judge.events import JudgeResult
from llmmesh.judge.run import run
from llmmesh.judge.v1 import judge_service_pb2 as pb
from llmmesh.jury import request as jury_request
from llmmesh.jury.events import JuryResult
from llmmesh.jury.run import run as deliberate
from llmmesh.jury.v1 import jury_service_pb2 as jury_pb
from llmmesh.patterns.json_budget import token_budget
from llmmesh.patterns.model_info import ModelInfo, prime
from llmmesh.patterns.service import Intake, result_of
from llmmesh.patterns.structured import MalformedModelOutput
from llmmesh.settings import PatternLimits
from tests.support.fake_model import Call, FakeModelClient, Reply

PARIS = {"question": "What is the capital of France?", "answer": "Paris",
         "contexts": ["Paris is the capital of France."], "ground_truth": "Paris", "judge_type": "factual"}
FRACTIONAL = Criterion("calibration", "Hedging in proportion to uncertainty.", 0, 1, 0.5, (Anchor(0.5, "some"),))


async def evaluation(**fields) -> request.JudgeRequest:
    return await request.from_proto(pb.EvaluateRequest(**{**PARIS, **fields}), Intake(PatternLimits()))


async def evaluate(client: FakeModelClient, req: request.JudgeRequest) -> JudgeResult:
    return await result_of(run(client, req), JudgeResult)


def verdict(score: float, reasoning: str = "It matches the reference.") -> str:
    return json.dumps({"reasoning": reasoning, "score": score})


# ---- bounded schemas and budgets ---------------------------------------------------------------

@pytest.mark.parametrize("criterion", [*BUILTINS.values(), FRACTIONAL], ids=lambda c: c.name)
def test_every_verdict_schema_is_bounded_and_small(criterion: Criterion) -> None:
    schema = prompts.pointwise_schema(criterion)
    assert schema["properties"]["reasoning"]["maxLength"] == prompts.REASONING_CHARS
    longest = json.dumps({"reasoning": "x" * prompts.REASONING_CHARS, "score": criterion.max_score})
    # Room for the longest valid verdict, and a few hundred tokens, not the old 1024.
    assert len(longest) < token_budget(schema) <= 500


def test_the_pairwise_schema_is_bounded() -> None:
    assert prompts.PAIRWISE_SCHEMA["properties"]["reasoning"]["maxLength"] == prompts.REASONING_CHARS
    assert token_budget(prompts.PAIRWISE_SCHEMA) <= 500


async def test_a_verdict_call_gets_the_schema_budget_unless_the_caller_asks_for_less() -> None:
    schema = prompts.pointwise_schema(BUILTINS["factual"])
    client = FakeModelClient([verdict(5)])
    await evaluate(client, await evaluation())
    lower = FakeModelClient([verdict(5)])
    await evaluate(lower, await evaluation(options={"max_tokens": 64}))
    (call,), (capped,) = client.calls, lower.calls
    assert call.sampling.max_tokens == token_budget(schema) and call.json_schema == schema
    assert call.sampling.temperature == 0.0  # a judge grades greedily by default
    assert capped.sampling.max_tokens == 64


async def test_the_prompt_asks_for_two_sentences_and_ends_with_the_task() -> None:
    system, user = prompts.pointwise_messages(BUILTINS["factual"], (await evaluation()).case)
    assert "at most two sentences" in system.content and "at most two sentences" in user.content
    assert user.content.endswith("grade the answer for factual accuracy on the 1 to 5 scale.")
    assert "<reference_answer>\nParis\n</reference_answer>" in user.content


# ---- repairs, the loop guard, the resolved model -----------------------------------------------

async def test_a_verdict_cut_off_at_the_budget_is_repaired_with_the_problem_named() -> None:
    cut = Reply('{"reasoning": "The answer is', done_reason="length")
    client = FakeModelClient([cut, verdict(5)])
    result = await evaluate(client, await evaluation())
    assert (result.score, result.verdict, result.judge) == (5, "pass", "fake:1b")
    first, second = client.calls
    assert second.messages[:2] == first.messages
    assert second.messages[2].role == "assistant" and second.messages[2].content == cut.text
    assert "cut off at the token limit" in second.messages[3].content
    assert second.sampling.seed != first.sampling.seed and second.sampling.temperature > 0


async def test_a_judge_that_never_answers_in_scale_fails_naming_the_resolved_model() -> None:
    client = FakeModelClient([verdict(9)])
    ev = await evaluation()
    with pytest.raises(MalformedModelOutput) as err:
        await evaluate(client, ev)  # the request names no model: the service's default answers
    assert len(client.calls) == ev.attempts == 3
    assert err.value.model == "fake:1b" and "'fake:1b'" in str(err.value)
    assert "maximum" in err.value.problem


async def test_looping_reasoning_is_cut_to_its_first_occurrence() -> None:
    loop = "The answer is Paris. " * 12
    client = FakeModelClient([verdict(5, loop.strip())])
    result = await evaluate(client, await evaluation())
    assert result.reasoning == "The answer is Paris."


async def test_pairwise_reasoning_is_cut_and_orders_are_mapped_back() -> None:
    def reply(call: Call) -> str:
        first = call.messages[-1].content.split("<answer_1>\n")[1].split("\n")[0]
        return json.dumps({"reasoning": "Four is right. " * 5, "winner": "1" if first == "4" else "2"})
    client = FakeModelClient(reply=reply)
    result = await evaluate(client, await evaluation(question="What is 2+2?", answer="4", answer_b="5", contexts=[],
                                               ground_truth="", mode=pb.JUDGE_MODE_PAIRWISE))
    assert (result.verdict, result.score, result.pairwise.consistent) == ("a", 1.0, True)
    assert [o.reasoning for o in result.pairwise.orders] == ["Four is right."] * 2
    assert all(c.sampling.max_tokens == token_budget(prompts.PAIRWISE_SCHEMA) for c in client.calls)


# ---- the context window ------------------------------------------------------------------------

async def test_a_case_too_long_for_the_window_names_the_callers_field_before_any_call() -> None:
    client = FakeModelClient([verdict(5)])
    prime(client, ModelInfo("fake:1b", 1024, native_tools=False))
    long_context = "Paris is the capital of France. " * 200
    with pytest.raises(InvalidArgument) as err:
        await evaluate(client, await request.from_proto(
            pb.EvaluateRequest(**{**PARIS, "contexts": ["short", long_context]}),
            Intake(PatternLimits(), prefix="evaluate.")))
    (violation,) = err.value.violations
    assert violation.field == "evaluate.contexts[1]" and "'fake:1b' (1024 tokens)" in violation.description
    assert client.calls == []
    fits = FakeModelClient([verdict(5)])
    prime(fits, ModelInfo("fake:1b", 8192, native_tools=False))
    assert (await evaluate(fits, await evaluation(contexts=[long_context]))).score == 5


# ---- the jury's default panel ------------------------------------------------------------------

async def trial(**fields) -> jury_request.JuryRequest:
    return await jury_request.from_proto(jury_pb.EvaluateRequest(question="What is 2+2?", answer="4", **fields),
                                         Intake(PatternLimits()))


async def decide(client: FakeModelClient, req: jury_request.JuryRequest) -> JuryResult:
    return await result_of(deliberate(client, req), JuryResult)


def by_criterion(call: Call) -> str:
    criterion = call.messages[0].content.split("Criterion: ")[1].split("\n")[0]
    return verdict({"factual": 5, "helpfulness": 8}[criterion], criterion)


async def test_no_panel_is_the_documented_default_panel() -> None:
    plain = await trial()
    assert [(j.name, j.model, j.criterion.name) for j in plain.panel] == [("factual", "", "factual"),
                                                                          ("helpfulness", "", "helpfulness")]
    assert plain.quorum == 2
    assert [j.criterion.name for j in (await trial(judge_type="helpfulness")).panel] == ["helpfulness", "factual"]
    assert [j.criterion.name for j in (await trial(judge_type="clarity")).panel] == ["clarity", "helpfulness"]
    with pytest.raises(InvalidArgument) as err:
        await trial(judge_type="faithfulness")
    assert [v.field for v in err.value.violations] == ["contexts"]


async def test_the_default_panel_judges_on_the_default_model() -> None:
    client = FakeModelClient(reply=by_criterion)
    result = await decide(client, await trial())
    got = [(v.juror.name, v.model, v.score, v.verdict, v.reasoning) for v in result.verdicts]
    assert got == [("factual", "fake:1b", 5, "pass", "factual"), ("helpfulness", "fake:1b", 8, "pass", "helpfulness")]
    assert result.score == pytest.approx((1.0 + 7 / 9) / 2) and result.verdict == "pass"
    assert {c.model for c in client.calls} == {""}  # the inference service picks its default
    assert result.usage.model_calls == 2  # the whole panel's calls


async def test_a_failed_juror_names_the_model_the_service_resolved() -> None:
    class Down(MeshError):
        pass

    def reply(call: Call) -> str:
        if "Criterion: helpfulness" in call.messages[0].content:
            raise Down("backend unavailable")
        return verdict(5)

    client = FakeModelClient(reply=reply)
    prime(client, ModelInfo("smollm2:135m", 4096, native_tools=False))
    result = await decide(client, await trial(quorum=1))
    factual, helpfulness = result.verdicts
    assert factual.error is None and isinstance(helpfulness.error, Down)
    assert helpfulness.model == "smollm2:135m"  # not '' or 'default'
    assert list(result.failed) == ["helpfulness"] and result.verdict == "pass"


async def test_a_juror_prompt_too_long_for_its_window_is_the_callers_error_before_any_call() -> None:
    client = FakeModelClient([verdict(4)])
    prime(client, ModelInfo("fake:1b", 1024, native_tools=False))
    msg = jury_pb.EvaluateRequest(question="What is 2+2?", answer="4", panel=[
        jury_pb.Juror(name="brief"), jury_pb.Juror(name="verbose", instructions="Be thorough. " * 400)])
    with pytest.raises(InvalidArgument) as err:
        await decide(client, await jury_request.from_proto(msg, Intake(PatternLimits())))
    assert [v.field for v in err.value.violations] == ["panel[1].instructions"]
    assert client.calls == []


async def test_a_juror_gets_the_verdict_budget() -> None:
    client = FakeModelClient([verdict(4)])
    await decide(client, await trial(panel=[jury_pb.Juror(name="one")]))
    (call,) = client.calls
    assert call.sampling.max_tokens == token_budget(prompts.pointwise_schema(BUILTINS["factual"]))
