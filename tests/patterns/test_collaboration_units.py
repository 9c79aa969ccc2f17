"""Collaboration's run logic against a fake model client: the debate's answer and verdict, the
defaults of a request with only a task, transcripts kept inside the context window, the loop
guard, and bounded steps."""

from __future__ import annotations

import json

import pytest

from llmmesh.collaboration import convert, prompts
from llmmesh.collaboration.events import CollaborationResult
from llmmesh.collaboration.request import DEFAULT_AGENTS, CollaborationRequest, Strategy, from_proto
from llmmesh.collaboration.run import run
from llmmesh.collaboration.v1 import collaboration_service_pb2 as pb
from llmmesh.framework.errors import InvalidArgument
from llmmesh.patterns.context import estimate_tokens
from llmmesh.patterns.json_budget import token_budget
from llmmesh.patterns.model_info import ModelInfo, prime
from llmmesh.patterns.options import FREE_TEXT_FREQUENCY_PENALTY
from llmmesh.patterns.service import Intake, result_of
from llmmesh.patterns.structured import MalformedModelOutput
from llmmesh.settings import PatternLimits
from tests.support.fake_model import Call, FakeModelClient

LIMITS = PatternLimits()


async def request(streaming: bool = False, **fields) -> CollaborationRequest:
    return await from_proto(pb.RunRequest(**fields), Intake(LIMITS, prefix="run." * streaming))


async def collaboration_result(client: FakeModelClient, req: CollaborationRequest) -> CollaborationResult:
    return await result_of(run(client, req), CollaborationResult)


def by_role(**answers: str):
    """Reply with the answer whose key appears in the call's system prompt (its role)."""
    def reply(call: Call) -> str:
        return next(text for role, text in answers.items() if role in call.messages[0].content)
    return reply


DEBATERS = [pb.Agent(name="pro", system_prompt="ROLE-PRO"), pb.Agent(name="con", system_prompt="ROLE-CON")]


async def test_debate_answers_with_the_winners_text_and_keeps_the_verdict_apart() -> None:
    client = FakeModelClient(reply=by_role(
        PRO="Python: the standard library has argparse.", CON="Go: one static binary.",
        moderator=json.dumps({"rationale": "A single binary is easier to ship. " * 5, "winner": "con"})))
    req = await request(task="Python or Go?", strategy=pb.STRATEGY_DEBATE, rounds=1, agents=DEBATERS)
    result = await collaboration_result(client, req)
    assert result.answer == "Go: one static binary."
    assert result.usage.model_calls == len(client.calls) == 3  # two debaters, one moderator
    # The rationale's loop is cut, in the verdict and in the moderator's transcript entry alike.
    assert (result.verdict.winner, result.verdict.rationale) == ("con", "A single binary is easier to ship.")
    assert json.loads(result.transcript[-1].content) == {"rationale": "A single binary is easier to ship.",
                                                         "winner": "con"}
    judge = client.calls[-1]
    assert judge.json_schema == prompts.verdict_schema(["pro", "con"])
    assert judge.json_schema["properties"]["winner"]["enum"] == ["pro", "con"]  # a debater, never a placeholder
    assert judge.sampling.max_tokens == token_budget(judge.json_schema)
    assert convert.response(result).verdict.winner == "con"


async def test_a_request_with_only_a_task_runs_the_documented_default() -> None:
    req = await request(task="Suggest a name for a bakery")
    assert (req.strategy, req.rounds, req.agents) == (Strategy.MIXTURE_OF_AGENTS, 1, DEFAULT_AGENTS)
    client = FakeModelClient(reply=by_role(**{"domain expert": "Crumb & Co.", "pragmatic": "Daily Bread"},
                                           synthesise="Crumb & Co. Daily Bread"))
    result = await collaboration_result(client, req)
    assert [(t.agent, t.round) for t in result.transcript] == [("expert", 1), ("pragmatist", 1), ("moderator", 2)]
    assert result.answer == "Crumb & Co. Daily Bread" and result.verdict is None
    assert convert.response(result).strategy == pb.STRATEGY_MIXTURE_OF_AGENTS


async def test_a_strategy_without_agents_takes_the_default_agents() -> None:
    req = await request(task="Python or Go?", strategy=pb.STRATEGY_DEBATE)
    assert [a.name for a in req.agents] == [a.name for a in DEFAULT_AGENTS] and req.rounds == 2


async def test_every_turn_is_bounded_and_its_loop_is_cut() -> None:
    loop = "Your Favorite Bakery. " * 60
    client = FakeModelClient(reply=by_role(**{"Answer in verse": "Crust and crumb, " + loop, "marketer": "Bake Bros."}))
    req = await request(task="Name a bakery", strategy=pb.STRATEGY_ROUND_ROBIN, rounds=1, agents=[
        pb.Agent(name="poet", system_prompt="Answer in verse."), pb.Agent(name="marketer")])
    result = await collaboration_result(client, req)
    assert result.transcript[0].content == "Crust and crumb, Your Favorite Bakery."
    assert result.answer == "Bake Bros."
    assert all(c.sampling.max_tokens == prompts.TURN_TOKENS for c in client.calls)
    assert all(c.sampling.frequency_penalty == FREE_TEXT_FREQUENCY_PENALTY for c in client.calls)


async def test_a_long_round_robin_stays_inside_the_window_and_keeps_the_task() -> None:
    turn = " ".join(f"point{i}" for i in range(100))  # ~900 characters, no loop for the guard to cut
    client = FakeModelClient(reply=lambda call: f"{call.messages[0].content} says {turn}")
    prime(client, ModelInfo("tiny:1b", 1024, native_tools=False))
    result = await collaboration_result(client, await request(
        task="TASK-KEPT", strategy=pb.STRATEGY_ROUND_ROBIN, rounds=4,
        agents=[pb.Agent(name=n, system_prompt=f"ROLE-{n}") for n in "abc"], aggregator=pb.Agent(name="scribe")))
    assert len(result.transcript) == 13
    for call in client.calls:
        assert estimate_tokens(call.messages) + call.sampling.max_tokens <= 1024
        assert "TASK-KEPT" in call.messages[-1].content
    last_turn = client.calls[-2].messages[-1].content
    assert "earlier turns left out" in last_turn and "ROLE-b says" in last_turn  # the newest turn is shown


async def test_a_task_too_long_for_the_window_is_invalid_argument_before_any_call() -> None:
    client = FakeModelClient(["unused"])
    prime(client, ModelInfo("tiny:1b", 1024, native_tools=False))
    with pytest.raises(InvalidArgument) as err:
        await collaboration_result(client, await request(streaming=True, task="word " * 1500))
    assert [v.field for v in err.value.violations] == ["run.task"]
    assert client.calls == []


async def test_a_role_too_long_for_the_window_names_that_agent() -> None:
    client = FakeModelClient(["unused"])
    prime(client, ModelInfo("tiny:1b", 1024, native_tools=False))
    agents = [pb.Agent(name="a"), pb.Agent(name="b", system_prompt="role " * 1500)]
    with pytest.raises(InvalidArgument) as err:
        await collaboration_result(client, await request(task="t", strategy=pb.STRATEGY_ROUND_ROBIN, agents=agents))
    assert [v.field for v in err.value.violations] == ["agents[1].system_prompt"]
    assert client.calls == []


async def test_an_empty_turn_is_asked_again_then_is_an_error_naming_the_model() -> None:
    client = FakeModelClient(["  ", "\n"], model="smollm2:135m")
    with pytest.raises(MalformedModelOutput) as err:
        await collaboration_result(client, await request(task="t", strategy=pb.STRATEGY_ROUND_ROBIN, agents=[
            pb.Agent(name="a"), pb.Agent(name="b")]))
    assert err.value.model == "smollm2:135m" and err.value.attempts == LIMITS.json_attempts
    assert len({c.sampling.seed for c in client.calls}) == LIMITS.json_attempts  # each attempt differs
