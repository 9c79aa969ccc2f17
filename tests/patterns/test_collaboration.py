"""Collaboration against a real server and scripted simulators: debate rounds and the judge,
round-robin order, parallel mixture-of-agents, a human taking turns over the stream, validation,
and cancellation.

Scripts answer an agent (matched by its role, the system prompt) only when its prompt holds what
it must have been shown, so a missing piece of context changes the transcript and fails the test.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import grpc
import pytest

from llmmesh.collaboration.v1 import collaboration_service_pb2 as pb
from llmmesh.collaboration.v1 import collaboration_service_pb2_grpc as pb_grpc
from llmmesh.common.v1 import common_pb2
from llmmesh.simulator.config import ScriptRule, SimulatorConfig
from tests.support.rpc import violations
from tests.support.sims import eventually, sim, stats

SERVICES = ("inference", "collaboration")
TASK = "Which flour makes the best TASK-BREAD?"


def agent(name: str) -> pb.Agent:
    return pb.Agent(name=name, system_prompt=f"ROLE-{name.upper()}: you are {name}.", model="m")


def rule(role: str, *must_see: str, says: str | dict[str, Any]) -> ScriptRule:
    """Answer `says` to the agent with this role, only if its prompt shows `must_see` in order."""
    pattern = ".*".join(["ROLE-" + role.upper(), *must_see])
    return ScriptRule(match=f"regex:(?s){pattern}", response=says if isinstance(says, str) else json.dumps(says))


def turns(transcript: Any) -> list[tuple[str, int, str, bool]]:
    return [(t.agent, t.round, t.content, t.human) for t in transcript]


async def read_until(call: Any, stop: Callable[[pb.RunStreamResponse], bool]) -> list[pb.RunStreamResponse]:
    """Events up to and including the first one `stop` accepts (or the end of the stream)."""
    events = []
    try:
        while (event := await call.read()) is not grpc.aio.EOF:
            events.append(event)
            if stop(event):
                break
    except grpc.aio.AioRpcError:
        pass  # the status stays on the call
    return events


def is_(kind: str) -> Callable[[pb.RunStreamResponse], bool]:
    return lambda e: e.WhichOneof("event") == kind


async def stream_all(stub: pb_grpc.CollaborationServiceStub, req: pb.RunRequest) -> list[pb.RunStreamResponse]:
    call = stub.RunStream(timeout=60)
    await call.write(pb.RunStreamRequest(run=req))
    await call.done_writing()
    return await read_until(call, lambda e: False)


# --- debate -------------------------------------------------------------------------------------

DEBATE_SCRIPT = (
    rule("judge", "ALICE-R2 rye", "BOB-R2 spelt", says={"rationale": "bob's case was stronger", "winner": "bob"}),
    rule("judge", says={"rationale": "JUDGE-DID-NOT-SEE-BOTH", "winner": "alice"}),
    # Round 2: only when shown the agent's own and the other's round-1 answer.
    rule("alice", "ALICE-R1 wheat", "BOB-R1 spelt", says="ALICE-R2 rye after all"),
    rule("bob", "BOB-R1 spelt", "ALICE-R1 wheat", says="BOB-R2 spelt still"),
    rule("alice", says="ALICE-R1 wheat"),
    rule("bob", says="BOB-R1 spelt"),
)


async def test_debate_two_agents_two_rounds_then_the_judge_decides(inference_mesh) -> None:
    req = pb.RunRequest(task=TASK, agents=[agent("alice"), agent("bob")], strategy=pb.STRATEGY_DEBATE, rounds=2,
                        aggregator=pb.Agent(name="judge", system_prompt="ROLE-JUDGE: weigh the answers.", model="m"))
    async with inference_mesh(sim(*DEBATE_SCRIPT), services=SERVICES) as m:
        events = await stream_all(pb_grpc.CollaborationServiceStub(m.channel), req)
    result = events[-1].result
    assert turns(result.transcript)[:4] == [("alice", 1, "ALICE-R1 wheat", False), ("bob", 1, "BOB-R1 spelt", False),
                                            ("alice", 2, "ALICE-R2 rye after all", False),
                                            ("bob", 2, "BOB-R2 spelt still", False)]
    judge = result.transcript[4]
    assert (judge.agent, judge.round, len(result.transcript)) == ("judge", 3, 5)
    assert json.loads(judge.content) == {"rationale": "bob's case was stronger", "winner": "bob"}
    # The answer is the winning debater's own final text; the verdict sits beside it.
    assert result.answer == "BOB-R2 spelt still"
    assert (result.verdict.winner, result.verdict.rationale) == ("bob", "bob's case was stronger")
    assert (result.strategy, result.rounds) == (pb.STRATEGY_DEBATE, 2)
    assert result.usage.model_calls == 5
    # The stream: each round's two turns (in either order) complete before the next round starts.
    done = [(e.turn.agent, e.turn.round) for e in events if e.HasField("turn")]
    assert sorted(done[:2]) == [("alice", 1), ("bob", 1)] and sorted(done[2:4]) == [("alice", 2), ("bob", 2)]
    assert done[4] == ("judge", 3)
    started = [(e.turn_started.agent, e.turn_started.round) for e in events if e.HasField("turn_started")]
    assert sorted(started) == sorted(done)
    # Every token is tagged with its speaker and adds up to its turns.
    by_source: dict[str, str] = {}
    for e in events:
        if e.HasField("delta"):
            by_source[e.delta.source] = by_source.get(e.delta.source, "") + e.delta.text
    assert by_source["alice"] == "ALICE-R1 wheat" + "ALICE-R2 rye after all"
    assert by_source["bob"] == "BOB-R1 spelt" + "BOB-R2 spelt still"
    assert by_source["judge"] == "bob's case was stronger"  # the verdict's rationale as written, no JSON
    assert [e.WhichOneof("event") for e in events].count("result") == 1


async def test_default_judge_is_a_moderator_whose_winner_is_a_debater(inference_mesh) -> None:
    req = pb.RunRequest(task=TASK, agents=[agent("alice"), agent("bob")], strategy=pb.STRATEGY_DEBATE, rounds=1)
    async with inference_mesh(sim(), services=SERVICES) as m:  # unscripted: the judge's JSON is random but valid
        resp = await pb_grpc.CollaborationServiceStub(m.channel).Run(req, timeout=60)
    assert [(t.agent, t.round) for t in resp.transcript] == [("alice", 1), ("bob", 1), ("moderator", 2)]
    verdict = json.loads(resp.transcript[-1].content)
    assert verdict["winner"] in {"alice", "bob"} and verdict["rationale"]
    assert (resp.verdict.winner, resp.verdict.rationale) == (verdict["winner"], verdict["rationale"])
    winner = next(t for t in resp.transcript if t.agent == verdict["winner"])
    assert resp.answer == winner.content and resp.answer


# --- round-robin --------------------------------------------------------------------------------

# Each speaker answers only when shown the previous speaker's words.
ROUND_ROBIN_SCRIPT = (
    rule("a", "C-ONE", says="A-TWO"),
    rule("b", "A-TWO", says="B-TWO"),
    rule("c", "B-TWO", says="C-TWO"),
    rule("summary", "A-ONE", "B-ONE", "C-ONE", "A-TWO", "B-TWO", "C-TWO", says="SUMMARY all agreed"),
    rule("a", says="A-ONE"),
    rule("b", "A-ONE", says="B-ONE"),
    rule("c", "B-ONE", says="C-ONE"),
)


async def test_round_robin_agents_speak_in_turn_and_the_last_turn_answers(inference_mesh) -> None:
    req = pb.RunRequest(task=TASK, agents=[agent("a"), agent("b"), agent("c")], strategy=pb.STRATEGY_ROUND_ROBIN,
                        rounds=2)
    async with inference_mesh(sim(*ROUND_ROBIN_SCRIPT), services=SERVICES) as m:
        events = await stream_all(pb_grpc.CollaborationServiceStub(m.channel), req)
    expected = [("a", 1, "A-ONE", False), ("b", 1, "B-ONE", False), ("c", 1, "C-ONE", False),
                ("a", 2, "A-TWO", False), ("b", 2, "B-TWO", False), ("c", 2, "C-TWO", False)]
    result = events[-1].result
    assert turns(result.transcript) == expected
    assert result.answer == "C-TWO"
    # Sequential: each turn is started, streamed and finished before the next one starts.
    shape = []
    for e in events:
        kind = e.WhichOneof("event")
        if kind == "turn_started":
            shape.append(("start", e.turn_started.agent))
        elif kind == "delta":
            assert shape[-1][1] == e.delta.source
        elif kind == "turn":
            shape.append(("turn", e.turn.agent))
    assert shape == [(k, name) for name in "abcabc" for k in ("start", "turn")]
    assert not any(e.HasField("awaiting_human") for e in events)


async def test_round_robin_with_an_aggregator_closes_with_a_summary(inference_mesh) -> None:
    summariser = pb.Agent(name="scribe", system_prompt="ROLE-SUMMARY: you summarise.")
    req = pb.RunRequest(task=TASK, agents=[agent("a"), agent("b"), agent("c")], strategy=pb.STRATEGY_ROUND_ROBIN,
                        rounds=2, aggregator=summariser)
    async with inference_mesh(sim(*ROUND_ROBIN_SCRIPT), services=SERVICES) as m:
        resp = await pb_grpc.CollaborationServiceStub(m.channel).Run(req, timeout=60)
    assert resp.answer == "SUMMARY all agreed"
    assert turns(resp.transcript)[-1] == ("scribe", 3, "SUMMARY all agreed", False)
    assert len(resp.transcript) == 7


# --- mixture-of-agents --------------------------------------------------------------------------


async def test_mixture_proposers_run_in_parallel_and_the_aggregator_sees_every_proposal(inference_mesh) -> None:
    proposals = {"p1": "P-ONE says rye flour is best", "p2": "P-TWO says spelt flour is best",
                 "p3": "P-THREE says wheat flour is best"}
    rules = (rule("agg", *(text.split()[0] for text in proposals.values()), says="FINAL blend them"),
             rule("agg", says="AGGREGATOR-MISSED-A-PROPOSAL"),
             *(rule(name, says=text) for name, text in proposals.items()))
    req = pb.RunRequest(task=TASK, agents=[agent(n) for n in proposals], strategy=pb.STRATEGY_MIXTURE_OF_AGENTS,
                        aggregator=pb.Agent(name="agg", system_prompt="ROLE-AGG: synthesise."))
    # Each proposal takes >= 0.6 s to generate, so a proposer that waited for another's end
    # could not overlap with it.
    async with inference_mesh(sim(*rules, token_delay_s=0.1), services=SERVICES) as m:
        events = await stream_all(pb_grpc.CollaborationServiceStub(m.channel), req)
        (sim_,) = m.sims
        peak = (await stats(sim_))["peak_in_flight_generations"]
    assert peak >= 3  # all three proposers generated at the same time
    result = events[-1].result
    assert result.answer == "FINAL blend them"
    assert turns(result.transcript) == [("p1", 1, proposals["p1"], False), ("p2", 1, proposals["p2"], False),
                                        ("p3", 1, proposals["p3"], False), ("agg", 2, "FINAL blend them", False)]
    # The aggregator starts only once every proposal is complete.
    kinds = [(e.WhichOneof("event"), e.turn.agent or e.turn_started.agent) for e in events]
    assert kinds.index(("turn_started", "agg")) > max(kinds.index(("turn", n)) for n in proposals)


async def test_mixture_layers_see_the_previous_layer(inference_mesh) -> None:
    rules = (rule("agg", "X-L2", "Y-L2", says="FINAL"),
             rule("x", "X-L1", "Y-L1", says="X-L2"), rule("y", "X-L1", "Y-L1", says="Y-L2"),
             rule("x", says="X-L1"), rule("y", says="Y-L1"))
    req = pb.RunRequest(task=TASK, agents=[agent("x"), agent("y")], strategy=pb.STRATEGY_MIXTURE_OF_AGENTS,
                        rounds=2, aggregator=pb.Agent(name="agg", system_prompt="ROLE-AGG"))
    async with inference_mesh(sim(*rules), services=SERVICES) as m:
        resp = await pb_grpc.CollaborationServiceStub(m.channel).Run(req, timeout=60)
    assert [(t.agent, t.round, t.content) for t in resp.transcript] == [
        ("x", 1, "X-L1"), ("y", 1, "Y-L1"), ("x", 2, "X-L2"), ("y", 2, "Y-L2"), ("agg", 3, "FINAL")]
    assert resp.answer == "FINAL" and resp.rounds == 2


# --- a human over the stream --------------------------------------------------------------------

HUMAN_WORDS = "HUMAN-SAYS consider rye"


async def test_human_turn_joins_the_transcript_and_later_prompts(inference_mesh) -> None:
    rules = (rule("judge", HUMAN_WORDS, says={"rationale": "alice listened to the human", "winner": "alice"}),
             rule("alice", HUMAN_WORDS, says="ALICE heard the human"),
             rule("bob", HUMAN_WORDS, says="BOB heard the human"),
             rule("alice", says="ALICE first"), rule("bob", says="BOB first"))
    req = pb.RunRequest(task=TASK, agents=[agent("alice"), agent("bob")], strategy=pb.STRATEGY_DEBATE, rounds=2,
                        human_in_loop=True, aggregator=pb.Agent(name="judge", system_prompt="ROLE-JUDGE"))
    async with inference_mesh(sim(*rules), services=SERVICES) as m:
        call = pb_grpc.CollaborationServiceStub(m.channel).RunStream(timeout=60)
        await call.write(pb.RunStreamRequest(run=req))
        round1 = await read_until(call, is_("awaiting_human"))
        await call.write(pb.RunStreamRequest(human=pb.HumanTurn(content=HUMAN_WORDS)))
        round2 = await read_until(call, is_("awaiting_human"))
        await call.write(pb.RunStreamRequest(human=pb.HumanTurn(content="")))  # empty: carry on
        rest = await read_until(call, is_("result"))
        code = await call.code()
    assert code == grpc.StatusCode.OK
    assert round1[-1].awaiting_human.round == 1
    assert sorted(e.turn.content for e in round1 if e.HasField("turn")) == ["ALICE first", "BOB first"]
    human_event = next(e.turn for e in round2 if e.HasField("turn"))
    assert (human_event.agent, human_event.round, human_event.content, human_event.human) == (
        "human", 1, HUMAN_WORDS, True)
    assert round2[-1].awaiting_human.round == 2
    assert sorted(e.turn.content for e in round2 if e.HasField("turn") and not e.turn.human) == [
        "ALICE heard the human", "BOB heard the human"]
    result = rest[-1].result
    assert turns(result.transcript)[:5] == [
        ("alice", 1, "ALICE first", False), ("bob", 1, "BOB first", False), ("human", 1, HUMAN_WORDS, True),
        ("alice", 2, "ALICE heard the human", False), ("bob", 2, "BOB heard the human", False)]
    assert len(result.transcript) == 6  # the empty human answer added no turn; then the judge
    assert result.answer == "ALICE heard the human" and result.verdict.winner == "alice"


async def test_no_human_answer_within_the_limit_ends_the_stream(inference_mesh) -> None:
    req = pb.RunRequest(task=TASK, agents=[agent("a"), agent("b")], strategy=pb.STRATEGY_ROUND_ROBIN, rounds=2,
                        human_in_loop=True)
    async with inference_mesh(sim(), services=SERVICES, limits={"human_timeout_s": 0.3}) as m:
        call = pb_grpc.CollaborationServiceStub(m.channel).RunStream(timeout=60)
        await call.write(pb.RunStreamRequest(run=req))
        events = await read_until(call, lambda e: False)
        code = await call.code()
    kinds = [e.WhichOneof("event") for e in events]
    assert "awaiting_human" in kinds and kinds[-1] == "error"
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED and "human" in events[-1].error.message


async def test_unary_run_rejects_human_in_loop(inference_mesh) -> None:
    req = pb.RunRequest(task=TASK, agents=[agent("a"), agent("b")], strategy=pb.STRATEGY_ROUND_ROBIN,
                        human_in_loop=True)
    async with inference_mesh(sim(), services=SERVICES) as m:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await pb_grpc.CollaborationServiceStub(m.channel).Run(req, timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(err.value)) == {"human_in_loop"}


# --- validation and cancellation ----------------------------------------------------------------


async def test_every_invalid_field_is_reported_at_once(inference_mesh) -> None:
    cases = {
        "debate": pb.RunRequest(task="", strategy=pb.STRATEGY_DEBATE, rounds=7,
                                agents=[agent("a"), agent("a"), pb.Agent(name="human"), pb.Agent(name=" "),
                                        pb.Agent(name="moderator")],
                                options=common_pb2.GenerationOptions(max_tokens=500)),
        "one debater": pb.RunRequest(task=TASK, strategy=pb.STRATEGY_DEBATE, agents=[agent("a")],
                                     aggregator=pb.Agent(name="a", system_prompt="x" * 101)),
        "unknown strategy": pb.RunRequest(task=TASK, agents=[agent("a"), agent("b")], strategy=99),
    }
    found = {}
    async with inference_mesh(sim(), services=SERVICES,
                              limits={"max_agents": 4, "max_rounds": 5, "max_text_chars": 100,
                                      "max_output_tokens": 256}) as m:
        stub = pb_grpc.CollaborationServiceStub(m.channel)
        for name, req in cases.items():
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.Run(req, timeout=30)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            found[name] = violations(err.value)
        with pytest.raises(grpc.aio.AioRpcError) as stream_err:
            async for _ in stub.RunStream(iter([pb.RunStreamRequest(run=cases["unknown strategy"])]), timeout=30):
                pass
        (sim_,) = m.sims
        started = (await stats(sim_))["started"]
    assert set(found["debate"]) == {"task", "rounds", "agents", "agents[1].name", "agents[2].name",
                                    "agents[3].name", "aggregator.name", "options.max_tokens"}
    assert "agents[0].name" in found["debate"]["agents[1].name"]
    assert set(found["one debater"]) == {"agents", "aggregator.name", "aggregator.system_prompt"}
    assert set(found["unknown strategy"]) == {"strategy"}
    # Failing before its first event, the stream ends with the status alone (REST gets a 400).
    assert stream_err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(stream_err.value)) == {"run.strategy"}
    assert started == 0


async def test_cancel_mid_debate_stops_every_agent_call(inference_mesh) -> None:
    req = pb.RunRequest(task=TASK, agents=[agent("a"), agent("b")], strategy=pb.STRATEGY_DEBATE)
    async with inference_mesh(sim(token_delay_s=0.05, tokens=400), services=SERVICES) as m:
        (sim_,) = m.sims
        call = pb_grpc.CollaborationServiceStub(m.channel).RunStream(timeout=60)
        await call.write(pb.RunStreamRequest(run=req))
        before = await read_until(call, is_("delta"))
        await eventually(lambda: _stat(sim_, "in_flight_generations", 2), timeout_s=15)
        await call.write(pb.RunStreamRequest(cancel=common_pb2.Cancel(reason="changed my mind")))
        after = await read_until(call, lambda e: False)
        code = await call.code()
        await eventually(lambda: _stat(sim_, "cancelled", 2), timeout_s=15)
        final = await stats(sim_)
    assert before[-1].HasField("delta")
    assert after and after[-1].HasField("error") and not any(e.HasField("result") for e in after)
    assert after[-1].error.code == grpc.StatusCode.CANCELLED.value[0] and "changed my mind" in after[-1].error.message
    assert code == grpc.StatusCode.CANCELLED
    # Both concurrent debaters' generations were abandoned, none finished.
    assert final["cancelled"] == 2 and final["completed"] == 0 and final["in_flight_generations"] == 0


async def _stat(sim_: Any, key: str, at_least: int) -> bool:
    return (await stats(sim_))[key] >= at_least


async def test_a_task_too_long_for_the_models_window_is_invalid_argument_naming_it(inference_mesh) -> None:
    # The simulator reports a 1024-token window; the inference service lists it; the run checks
    # the caller's text against it before any model is called.
    config = SimulatorConfig(name="a", models=("m",), context_length=1024)
    req = pb.RunRequest(task="Discuss this: " + "word " * 1200, agents=[agent("a"), agent("b")],
                        strategy=pb.STRATEGY_ROUND_ROBIN)
    async with inference_mesh(config, services=SERVICES) as m:
        stub = pb_grpc.CollaborationServiceStub(m.channel)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            async for _ in stub.RunStream(iter([pb.RunStreamRequest(run=req)]), timeout=30):
                pass
        (sim_,) = m.sims
        started = (await stats(sim_))["started"]
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    found = violations(err.value)
    assert set(found) == {"run.task"} and "1024" in found["run.task"]
    assert started == 0
