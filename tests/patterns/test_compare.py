"""Comparisons against a real server and scripted simulators: answers streamed side by side, the
jury's scores and the ranking computed exactly from scripted verdicts, pairwise wins in both orders,
the figures of each answer, the run stored, and bad input named field by field."""

from __future__ import annotations

import json

import grpc
import pytest

from llmmesh.compare.v1 import compare_service_pb2 as pb
from llmmesh.compare.v1 import compare_service_pb2_grpc as pb_grpc
from llmmesh.inference.v1 import inference_service_pb2 as ipb
from llmmesh.judge.v1 import judge_service_pb2 as jpb
from llmmesh.runs.v1 import runs_service_pb2 as rpb
from llmmesh.runs.v1 import runs_service_pb2_grpc as rpb_grpc
from llmmesh.simulator.config import ScriptRule
from tests.support.rpc import drain, violations
from tests.support.sims import sim

SERVICES = ("inference", "compare", "runs")
MODELS = ("m1", "m2", "m3", "judge")
PROMPT = "Name the capital of France."


def verdict(score: float, reasoning: str = "scripted") -> str:
    return json.dumps({"reasoning": reasoning, "score": score})


def winner(position: str) -> str:
    return json.dumps({"reasoning": "scripted", "winner": position})


# The judges' rules come first: their prompts quote the question, which the answers' rules match.
# m1 answers ALPHA (scored 5 of 5 on factual), m2 BRAVO (3), m3 CHARLIE (2); pairwise, ALPHA beats
# both others in either order, BRAVO and CHARLIE always pick the first shown (an inconsistent pair).
PAIRWISE = (
    ScriptRule(match="regex:(?s)You compare two answers.*ALPHA.*answer_2>\n(BRAVO|CHARLIE)", response=winner("1")),
    ScriptRule(match="regex:(?s)You compare two answers.*answer_1>\n(BRAVO|CHARLIE).*ALPHA", response=winner("2")),
    ScriptRule(match="You compare two answers", response=winner("1")),
)
POINTWISE = (
    ScriptRule(match="regex:(?s)Criterion: factual.*<answer>\nALPHA", response=verdict(5)),
    ScriptRule(match="regex:(?s)Criterion: factual.*<answer>\nBRAVO", response=verdict(3)),
    ScriptRule(match="regex:(?s)Criterion: factual.*<answer>\nCHARLIE", response=verdict(2)),
    ScriptRule(match="Criterion: helpfulness", response=verdict(10)),
)
ANSWERS = (ScriptRule(match=PROMPT, model="m1", response="ALPHA Paris is the capital."),
           ScriptRule(match=PROMPT, model="m2", response="BRAVO Paris, I think."),
           ScriptRule(match=PROMPT, model="m3", response="CHARLIE Lyon."))
RULES = (*PAIRWISE, *POINTWISE, *ANSWERS)


def request(**fields) -> pb.RunRequest:
    base = {"prompt": PROMPT, "models": ["m1", "m2", "m3"], "judges": ["judge"], "criteria": ["factual"],
            "reference": "Paris"}
    return pb.RunRequest(**{**base, **fields})


async def test_answers_are_scored_by_the_jury_and_ranked(inference_mesh) -> None:
    async with inference_mesh(sim(*RULES, models=MODELS), services=SERVICES) as m:
        resp = await pb_grpc.CompareServiceStub(m.channel).Run(request())
    assert [a.model for a in resp.answers] == ["m1", "m2", "m3"]
    assert [a.text for a in resp.answers] == ["ALPHA Paris is the capital.", "BRAVO Paris, I think.", "CHARLIE Lyon."]
    # factual is 1-5: normalised (score - 1) / 4.
    assert [(r.model, r.rank, r.score) for r in resp.ranking] == [("m1", 1, 1.0), ("m2", 2, 0.5), ("m3", 3, 0.25)]
    for entry, answer in zip(sorted(resp.ranking, key=lambda r: r.model), resp.answers, strict=True):
        assert entry.output_tokens == answer.output_tokens > 0
        assert entry.latency_ms == answer.latency_ms >= answer.time_to_first_token_ms > 0
        assert entry.tokens_per_second == answer.tokens_per_second > 0
        assert (entry.wins, entry.ties) == (0, 0)
    assert list(resp.criteria) == ["factual"] and not resp.comparisons
    scores = {s.model: s for s in resp.scores}
    assert [(c.criterion, c.score) for c in scores["m2"].criteria] == [("factual", 0.5)]
    assert [(v.juror, v.model, v.score) for v in scores["m2"].verdicts] == [("judge/factual", "judge", 3)]
    # Three answers, then one juror per answer.
    assert resp.usage.model_calls == 6 and resp.run_id


async def test_pairwise_round_robin_counts_wins_in_both_orders(inference_mesh) -> None:
    flat = (*PAIRWISE, ScriptRule(match="Criterion:", response=verdict(4)), *ANSWERS)  # every answer scores alike
    async with inference_mesh(sim(*flat, models=MODELS), services=SERVICES) as m:
        resp = await pb_grpc.CompareServiceStub(m.channel).Run(request(pairwise=True))
    pairs = {(c.model_a, c.model_b): c for c in resp.comparisons}
    assert list(pairs) == [("m1", "m2"), ("m1", "m3"), ("m2", "m3")]
    assert (pairs["m1", "m2"].winner, pairs["m1", "m2"].consistent) == ("m1", True)
    assert (pairs["m1", "m3"].winner, pairs["m1", "m3"].consistent) == ("m1", True)
    # BRAVO vs CHARLIE: each order picked the answer shown first, so neither won.
    assert (pairs["m2", "m3"].winner, pairs["m2", "m3"].consistent) == ("", False)
    assert [(o.order, o.winner) for o in pairs["m2", "m3"].orders] == [("a,b", jpb.VERDICT_A), ("b,a", jpb.VERDICT_B)]
    assert pairs["m1", "m2"].judge == "judge"
    # Equal scores: wins decide; m2 and m3 tie on both and share the rank.
    assert [(r.model, r.rank, r.wins, r.ties) for r in resp.ranking] == [("m1", 1, 2, 0), ("m2", 2, 0, 1),
                                                                         ("m3", 2, 0, 1)]
    assert resp.usage.model_calls == 3 + 3 + 3 * 2


async def test_the_stream_shows_answers_side_by_side_then_scores_and_is_stored(inference_mesh) -> None:
    async with inference_mesh(sim(*RULES, models=MODELS), services=SERVICES) as m:
        call = pb_grpc.CompareServiceStub(m.channel).RunStream(
            iter([pb.RunStreamRequest(run=request(models=["m1", "m3"], pairwise=True))]))
        events, err = await drain(call)
        assert err is None
        result = events[-1].result
        run = (await rpb_grpc.RunsServiceStub(m.channel).GetRun(rpb.GetRunRequest(run_id=result.run_id))).run
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds[-1] == "result" and kinds.count("answer") == 2 and kinds.count("score") == 2
    assert kinds.count("verdict") == 2 and kinds.count("comparison") == 1
    text = {"m1": "", "m3": ""}
    for e in events:
        if e.HasField("delta"):
            text[e.delta.source] += e.delta.text
    assert text == {"m1": "ALPHA Paris is the capital.", "m3": "CHARLIE Lyon."}
    # Each model's answer ends before its own verdict; the comparison comes after both scores.
    for model in ("m1", "m3"):
        answered = next(i for i, e in enumerate(events) if e.HasField("answer") and e.answer.model == model)
        judged = next(i for i, e in enumerate(events) if e.HasField("verdict") and e.verdict.model == model)
        assert answered < judged
    assert kinds.index("comparison") > max(i for i, k in enumerate(kinds) if k == "score")
    assert [r.model for r in result.ranking] == ["m1", "m3"] and result.ranking[0].wins == 1
    assert (run.pattern, run.method, run.status) == ("compare", "RunStream", rpb.RUN_STATUS_SUCCEEDED)
    assert {"m1", "m3", "judge"} <= set(run.models) and run.result["ranking"][0]["model"] == "m1"


async def test_a_conversation_and_default_criteria(inference_mesh) -> None:
    rules = (ScriptRule(match="Criterion: helpfulness", response=verdict(7)),
             ScriptRule(match="Criterion: factual", response=verdict(4)),
             ScriptRule(match="And Spain?", model="m1", response="Madrid."),
             ScriptRule(match="And Spain?", model="m2", response="Barcelona."))
    messages = [ipb.Message(role=ipb.ROLE_USER, content="Capital of France?"),
                ipb.Message(role=ipb.ROLE_ASSISTANT, content="Paris."),
                ipb.Message(role=ipb.ROLE_USER, content="And Spain?")]
    async with inference_mesh(sim(*rules, models=MODELS), services=SERVICES) as m:
        stub = pb_grpc.CompareServiceStub(m.channel)
        plain = await stub.Run(pb.RunRequest(messages=messages, models=["m1", "m2"], judges=["judge"]))
        referenced = await stub.Run(pb.RunRequest(messages=messages, models=["m1", "m2"], judges=["judge"],
                                                  reference="Madrid"))
    assert [a.text for a in plain.answers] == ["Madrid.", "Barcelona."]
    assert list(plain.criteria) == ["helpfulness"] and list(referenced.criteria) == ["helpfulness", "factual"]
    assert plain.scores[0].score == pytest.approx(6 / 9)  # helpfulness is 1-10
    assert [c.criterion for c in referenced.scores[0].criteria] == ["helpfulness", "factual"]


async def test_an_unknown_model_fails_the_comparison(inference_mesh) -> None:
    async with inference_mesh(sim(*RULES, models=MODELS), services=SERVICES) as m:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await pb_grpc.CompareServiceStub(m.channel).Run(request(models=["m1", "nope"]))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(("fields", "expected"), [
    ({"models": []}, {"models": "name at least two models to compare; got 0"}),
    ({"models": ["m1"]}, {"models": "name at least two models to compare; got 1"}),
    ({"models": ["m1", "m2", "m1"]}, {"models[2]": "duplicates models[0] 'm1'"}),
    ({"models": ["m1", ""]}, {"models[1]": "is required"}),
    ({"prompt": ""}, {"prompt": "is required"}),
    ({"criteria": ["factual", "beauty", "faithfulness"]}, {
        "criteria[1]": "unknown criterion 'beauty'; valid: clarity, factual, faithfulness, helpfulness, relevance, "
                       "safety",
        "criteria[2]": "criterion 'faithfulness' judges answers against contexts, which a comparison does not take"}),
    ({"judges": ["judge", "judge"]}, {"judges[1]": "duplicates judges[0] 'judge'"}),
    ({"judges": [f"j{i}" for i in range(7)], "criteria": ["factual", "clarity"]},
     {"judges": "7 judges times 2 criteria is 14 jurors per answer; the server maximum is 12"}),
    ({"rubric": jpb.Rubric(name="factual", description="d", min_score=1, max_score=5)},
     {"criteria[0]": "has the rubric's name 'factual'"}),
])
async def test_bad_input_names_each_field(inference_mesh, fields, expected) -> None:
    async with inference_mesh(sim(*RULES, models=MODELS), services=SERVICES) as m:
        stub = pb_grpc.CompareServiceStub(m.channel)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.Run(request(**fields))
        assert violations(err.value) == expected
        # The stream names them under its opening message.
        _, stream_err = await drain(stub.RunStream(iter([pb.RunStreamRequest(run=request(**fields))])))
        assert stream_err is not None
        assert violations(stream_err) == {f"run.{k}": v for k, v in expected.items()}


async def test_a_conversation_must_be_well_formed(inference_mesh) -> None:
    async with inference_mesh(sim(*RULES, models=MODELS), services=SERVICES) as m:
        stub = pb_grpc.CompareServiceStub(m.channel)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.Run(pb.RunRequest(prompt="hi", models=["m1", "m2"], messages=[
                ipb.Message(role=ipb.ROLE_TOOL, content="x"), ipb.Message(role=ipb.ROLE_ASSISTANT, content="")]))
    assert violations(err.value) == {
        "prompt": "give a prompt or messages, not both",
        "messages[0].role": "must be ROLE_SYSTEM, ROLE_USER or ROLE_ASSISTANT",
        "messages[1].content": "is required",
        "messages[1].role": "must be ROLE_USER: the models answer the conversation's last message",
    }
