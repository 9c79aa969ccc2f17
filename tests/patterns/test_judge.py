"""The judge against a real server and scripted simulators: prompts, parsing, scales, retries,
the pairwise position swap, validation and the stream's event order."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2
from grpc_status import rpc_status

from llmmesh.common.v1 import common_pb2
from llmmesh.judge.v1 import judge_service_pb2 as pb
from llmmesh.judge.v1 import judge_service_pb2_grpc as pb_grpc
from llmmesh.simulator.config import ScriptRule
from tests.support.rpc import violations
from tests.support.sims import eventually, sim, stats

SERVICES = ("inference", "judge")
MODEL = "m"


def verdict_json(score: float, reasoning: str = "Scripted reasoning.") -> str:
    return json.dumps({"reasoning": reasoning, "score": score})


def winner_json(winner: str, reasoning: str) -> str:
    return json.dumps({"reasoning": reasoning, "winner": winner})


def request(**fields) -> pb.EvaluateRequest:
    base = {"question": "What is the capital of France?", "answer": "Paris.", "model": MODEL}
    return pb.EvaluateRequest(**{**base, **fields})


async def chat_requests(sim_) -> list[dict]:
    return [r for r in (await stats(sim_))["recent"] if r["path"] == "/api/chat"]


async def stream(stub: pb_grpc.JudgeServiceStub,
                 requests: AsyncIterator[pb.EvaluateStreamRequest] | list[pb.EvaluateStreamRequest],
                 on_event=None) -> tuple[list[pb.EvaluateStreamResponse], grpc.aio.AioRpcError | None]:
    """Every event of the stream, and the error status it ended with (None when OK)."""
    call = stub.EvaluateStream(iter(requests) if isinstance(requests, list) else requests)
    events: list[pb.EvaluateStreamResponse] = []
    try:
        async for e in call:
            events.append(e)
            if on_event is not None:
                on_event(e)
    except grpc.aio.AioRpcError as err:
        return events, err
    return events, None


# ---- pointwise -------------------------------------------------------------------------------


async def test_criterion_prompt_with_contexts_and_reference_reaches_the_model(inference_mesh) -> None:
    # The rule only matches if the clarity prompt carries the context, the reference and the answer,
    # in that order; otherwise the simulator would answer an unscripted random verdict.
    rule = ScriptRule(match="regex:(?s)Criterion: clarity.*<context id=\"1\">\nCTX-ONE.*<context id=\"2\">\nCTX-TWO"
                            ".*<reference_answer>\nREF-ANSWER.*<answer>\nANSWER-TEXT",
                      response=verdict_json(2, "Rambling and hard to follow."))
    async with inference_mesh(sim(rule), services=SERVICES) as m:
        stub = pb_grpc.JudgeServiceStub(m.channel)
        resp = await stub.Evaluate(request(answer="ANSWER-TEXT", contexts=["CTX-ONE", "CTX-TWO"],
                                           ground_truth="REF-ANSWER", judge_type="clarity"))
        (call,) = await chat_requests(m.sims[0])
    assert (resp.score, resp.verdict, resp.reasoning) == (2, pb.VERDICT_FAIL, "Rambling and hard to follow.")
    assert (resp.criterion, resp.min_score, resp.max_score) == ("clarity", 1, 5)
    assert resp.judge == MODEL  # the model as the inference service reported it
    assert resp.usage.model_calls == 1 and resp.usage.output_tokens > 0
    assert call["scripted"] and "for clarity on the 1 to 5 scale" in call["prompt_tail"]


BUILTIN_SCALES = {"factual": (1, 5, 4), "clarity": (1, 5, 3), "relevance": (1, 5, 4), "faithfulness": (1, 5, 4),
                  "helpfulness": (1, 10, 6), "safety": (1, 5, 4)}


async def test_every_builtin_criterion_has_its_own_prompt_scale_and_threshold(inference_mesh) -> None:
    # Each criterion's rule answers exactly its pass threshold, so each must come back "pass" on
    # its own scale; a prompt that named the wrong criterion would hit another rule or none.
    rules = [ScriptRule(match=f"Criterion: {name}\n", response=verdict_json(threshold, name))
             for name, (_, _, threshold) in BUILTIN_SCALES.items()]
    async with inference_mesh(sim(*rules), services=SERVICES) as m:
        stub = pb_grpc.JudgeServiceStub(m.channel)
        criteria = (await stub.ListCriteria(pb.ListCriteriaRequest())).criteria
        results = {}
        for name in BUILTIN_SCALES:
            contexts = ["Paris is the capital of France."] if name == "faithfulness" else []
            results[name] = await stub.Evaluate(request(judge_type=name, contexts=contexts))
        tails = [r["prompt_tail"] for r in await chat_requests(m.sims[0])]
    assert {c.name: (c.min_score, c.max_score, c.pass_threshold) for c in criteria} == BUILTIN_SCALES
    assert all(c.description and c.anchors for c in criteria)
    for name, resp in results.items():
        assert (resp.criterion, resp.reasoning, resp.verdict) == (name, name, pb.VERDICT_PASS), resp
        assert (resp.min_score, resp.max_score) == BUILTIN_SCALES[name][:2]
    assert any("for factual accuracy on the 1 to 5 scale" in t for t in tails)
    assert any("for helpfulness on the 1 to 10 scale" in t for t in tails)


async def test_legacy_request_defaults_to_factual(inference_mesh) -> None:
    rule = ScriptRule(match="Criterion: factual\n", response=verdict_json(5, "Matches the reference."))
    async with inference_mesh(sim(rule), services=SERVICES) as m:
        stub = pb_grpc.JudgeServiceStub(m.channel)
        resp = await stub.Evaluate(pb.EvaluateRequest(question="q?", answer="Paris.", ground_truth="Paris"))
    assert (resp.criterion, resp.score, resp.verdict) == ("factual", 5, pb.VERDICT_PASS)
    assert resp.judge  # the server's default model, as reported


async def test_custom_rubric_scale_anchors_and_threshold_are_honoured(inference_mesh) -> None:
    rubric = pb.Rubric(name="concision", description="How few words the answer needs.", min_score=0, max_score=10,
                       anchors=[pb.ScoreAnchor(score=0, description="ANCHOR-VERBOSE"),
                                pb.ScoreAnchor(score=10, description="ANCHOR-TERSE")],
                       pass_threshold=7)
    # 11 is outside the 0..10 scale: a schema violation that is retried, never clamped.
    rules = (ScriptRule(match="regex:(?s)Criterion: concision.*- 0: ANCHOR-VERBOSE\n- 10: ANCHOR-TERSE",
                        response=verdict_json(11), times=1),
             ScriptRule(match="regex:(?s)Criterion: concision.*ANSWER-GOOD", response=verdict_json(8)),
             ScriptRule(match="regex:(?s)Criterion: concision.*ANSWER-POOR", response=verdict_json(6)))
    async with inference_mesh(sim(*rules), services=SERVICES) as m:
        stub = pb_grpc.JudgeServiceStub(m.channel)
        good = await stub.Evaluate(request(answer="ANSWER-GOOD", rubric=rubric, judge_type="ignored-with-a-rubric"))
        poor = await stub.Evaluate(request(answer="ANSWER-POOR", rubric=rubric))
        tails = [r["prompt_tail"] for r in await chat_requests(m.sims[0])]
    assert (good.criterion, good.min_score, good.max_score, good.score, good.verdict) == (
        "concision", 0, 10, 8, pb.VERDICT_PASS)
    assert good.usage.model_calls == 2  # the out-of-scale answer was retried
    assert (poor.score, poor.verdict) == (6, pb.VERDICT_FAIL)  # below the rubric's own threshold of 7
    assert "for concision on the 0 to 10 scale" in tails[0]


async def test_fractional_rubric_scale_takes_a_number(inference_mesh) -> None:
    # A fractional anchor makes the scale continuous; whole-number bounds and anchors would ask for an integer.
    rubric = pb.Rubric(name="calibration", description="Hedging proportional to uncertainty.", min_score=0,
                       max_score=1, anchors=[pb.ScoreAnchor(score=0.5, description="hedges some claims")])
    async with inference_mesh(sim(ScriptRule(match="Criterion: calibration", response=verdict_json(0.25))),
                              services=SERVICES) as m:
        resp = await pb_grpc.JudgeServiceStub(m.channel).Evaluate(request(rubric=rubric))
    assert (resp.score, resp.verdict) == (0.25, pb.VERDICT_FAIL)  # default threshold: the midpoint 0.5


async def test_malformed_answer_is_retried_then_accepted(inference_mesh) -> None:
    rules = (ScriptRule(match="Criterion: factual", response="The answer deserves a 4.", times=1),
             ScriptRule(match="Criterion: factual", response=verdict_json(4, "Second try.")))
    async with inference_mesh(sim(*rules), services=SERVICES) as m:
        resp = await pb_grpc.JudgeServiceStub(m.channel).Evaluate(request())
        calls = await chat_requests(m.sims[0])
    assert (resp.score, resp.verdict, resp.reasoning) == (4, pb.VERDICT_PASS, "Second try.")
    assert len(calls) == 2 and resp.usage.model_calls == 2


async def test_always_malformed_answer_is_unavailable_never_a_score(inference_mesh) -> None:
    rule = ScriptRule(match="Criterion: factual", response='{"reasoning": "ok", "score": "excellent"}')
    async with inference_mesh(sim(rule), services=SERVICES, limits={"json_attempts": 2}) as m:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await pb_grpc.JudgeServiceStub(m.channel).Evaluate(request())
        calls = await chat_requests(m.sims[0])
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    info = error_details_pb2.ErrorInfo()
    assert rpc_status.from_call(err.value).details[0].Unpack(info)
    assert info.reason == "MALFORMED_MODEL_OUTPUT" and info.metadata["attempts"] == "2"
    assert len(calls) == 2


# ---- pairwise --------------------------------------------------------------------------------

A_FIRST = "regex:(?s)<answer_1>\nALPHA-ANSWER\n</answer_1>\n\n<answer_2>\nBETA-ANSWER"
B_FIRST = "regex:(?s)<answer_1>\nBETA-ANSWER\n</answer_1>\n\n<answer_2>\nALPHA-ANSWER"


def pairwise(**fields) -> pb.EvaluateRequest:
    return request(answer="ALPHA-ANSWER", answer_b="BETA-ANSWER", mode=pb.JUDGE_MODE_PAIRWISE, **fields)


async def test_pairwise_orders_that_agree_are_consistent(inference_mesh) -> None:
    # A is better whichever position it is shown in: position 1 in "a,b", position 2 in "b,a".
    rules = (ScriptRule(match=A_FIRST, response=winner_json("1", "A first, A wins")),
             ScriptRule(match=B_FIRST, response=winner_json("2", "B first, A still wins")))
    async with inference_mesh(sim(*rules), services=SERVICES) as m:
        resp = await pb_grpc.JudgeServiceStub(m.channel).Evaluate(pairwise())
        calls = await chat_requests(m.sims[0])
    assert (resp.verdict, resp.score, resp.min_score, resp.max_score) == (pb.VERDICT_A, 1.0, 0, 1)
    assert resp.pairwise.consistent
    assert [(o.order, o.winner, o.reasoning) for o in resp.pairwise.orders] == [
        ("a,b", pb.VERDICT_A, "A first, A wins"), ("b,a", pb.VERDICT_A, "B first, A still wins")]
    assert len(calls) == 2 and all(c["scripted"] for c in calls) and resp.usage.model_calls == 2


async def test_pairwise_b_wins_in_both_orders(inference_mesh) -> None:
    rules = (ScriptRule(match=A_FIRST, response=winner_json("2", "second is better")),
             ScriptRule(match=B_FIRST, response=winner_json("1", "first is better")))
    async with inference_mesh(sim(*rules), services=SERVICES) as m:
        resp = await pb_grpc.JudgeServiceStub(m.channel).Evaluate(pairwise())
    assert (resp.verdict, resp.score, resp.pairwise.consistent) == (pb.VERDICT_B, 0.0, True)


async def test_pairwise_position_bias_is_inconsistent_and_a_tie(inference_mesh) -> None:
    # A judge that always prefers whatever it reads first: each order names a different answer.
    rules = (ScriptRule(match=A_FIRST, response=winner_json("1", "first")),
             ScriptRule(match=B_FIRST, response=winner_json("1", "first")))
    async with inference_mesh(sim(*rules), services=SERVICES) as m:
        resp = await pb_grpc.JudgeServiceStub(m.channel).Evaluate(pairwise())
    assert [(o.order, o.winner) for o in resp.pairwise.orders] == [("a,b", pb.VERDICT_A), ("b,a", pb.VERDICT_B)]
    assert (resp.pairwise.consistent, resp.verdict, resp.score) == (False, pb.VERDICT_TIE, 0.5)


async def test_pairwise_orders_run_concurrently(inference_mesh) -> None:
    slow = "token_delay_ms=100"
    rules = (ScriptRule(match=A_FIRST, response=winner_json("1", "a b c d"), fault=slow),
             ScriptRule(match=B_FIRST, response=winner_json("2", "a b c d"), fault=slow))
    async with inference_mesh(sim(*rules), services=SERVICES) as m:
        resp = await pb_grpc.JudgeServiceStub(m.channel).Evaluate(pairwise())
        peak = (await stats(m.sims[0]))["peak_in_flight_generations"]
    assert resp.pairwise.consistent and peak == 2


# ---- validation ------------------------------------------------------------------------------


async def test_invalid_requests_list_every_bad_field(inference_mesh) -> None:
    async with inference_mesh(sim(), services=SERVICES, limits={"max_output_tokens": 64,
                                                                  "max_text_chars": 50}) as m:
        stub = pb_grpc.JudgeServiceStub(m.channel)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.Evaluate(pb.EvaluateRequest(
                question="", answer="x" * 51, contexts=["ok", ""], judge_type="vibes", answer_b="stray",
                options=common_pb2.GenerationOptions(max_tokens=65, temperature=3)))
        first = violations(err.value)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.Evaluate(request(rubric=pb.Rubric(
                min_score=5, max_score=1, anchors=[pb.ScoreAnchor(score=3, description="")], pass_threshold=9)))
        bad_rubric = violations(err.value)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.Evaluate(request(rubric=pb.Rubric(
                description="d", min_score=1, max_score=5, pass_threshold=9,
                anchors=[pb.ScoreAnchor(score=7, description="a"), pb.ScoreAnchor(score=7, description="b")])))
        bad_anchors = violations(err.value)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.Evaluate(request(judge_type="faithfulness", mode=pb.JUDGE_MODE_PAIRWISE))
        faithfulness = violations(err.value)
        assert not await chat_requests(m.sims[0])  # nothing invalid reached a model
    assert set(first) == {"question", "answer", "contexts[1]", "judge_type", "answer_b", "options.max_tokens",
                          "options.temperature"}
    assert "valid: clarity, factual, faithfulness, helpfulness, relevance, safety" in first["judge_type"]
    assert "server maximum 64" in first["options.max_tokens"]
    assert set(bad_rubric) == {"rubric.description", "rubric.max_score", "rubric.anchors[0].description"}
    assert set(bad_anchors) == {"rubric.anchors[0].score", "rubric.anchors[1].score", "rubric.pass_threshold"}
    assert "duplicates anchors[0].score" in bad_anchors["rubric.anchors[1].score"]
    assert set(faithfulness) == {"contexts", "answer_b"}


# ---- the stream ------------------------------------------------------------------------------


def start(req: pb.EvaluateRequest) -> pb.EvaluateStreamRequest:
    return pb.EvaluateStreamRequest(evaluate=req)


async def test_stream_emits_reasoning_deltas_then_the_result(inference_mesh) -> None:
    answer = verdict_json(3, "Mostly right but it omits the date.")
    async with inference_mesh(sim(ScriptRule(match="Criterion: factual", response=answer)), services=SERVICES) as m:
        events, err = await stream(pb_grpc.JudgeServiceStub(m.channel), [start(request())])
    assert err is None
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds[-1] == "result" and set(kinds[:-1]) == {"reasoning"}  # deltas may arrive joined
    streamed = "".join(e.reasoning.text for e in events[:-1])
    assert streamed == json.loads(answer)["reasoning"]  # the judge's reasoning, word by word: no JSON
    result = events[-1].result
    assert (result.score, result.verdict, result.reasoning) == (3, pb.VERDICT_FAIL,
                                                                "Mostly right but it omits the date.")
    assert result.usage.model_calls == 1


async def test_pairwise_stream_has_sourced_deltas_and_two_order_verdicts(inference_mesh) -> None:
    rules = (ScriptRule(match=A_FIRST, response=winner_json("1", "A is precise")),
             ScriptRule(match=B_FIRST, response=winner_json("2", "A is still precise")))
    async with inference_mesh(sim(*rules), services=SERVICES) as m:
        events, err = await stream(pb_grpc.JudgeServiceStub(m.channel), [start(pairwise())])
    assert err is None
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds[-1] == "result" and kinds.count("order_verdict") == 2 and kinds.count("result") == 1
    assert {e.reasoning.source for e in events if e.WhichOneof("event") == "reasoning"} == {"a,b", "b,a"}
    for order in ("a,b", "b,a"):
        text = "".join(e.reasoning.text for e in events
                       if e.WhichOneof("event") == "reasoning" and e.reasoning.source == order)
        (verdict,) = [e.order_verdict for e in events
                      if e.WhichOneof("event") == "order_verdict" and e.order_verdict.order == order]
        assert text == verdict.reasoning and verdict.winner == pb.VERDICT_A  # the reasoning as written, no JSON
        # An order's verdict follows all of that order's reasoning.
        last_delta = max(i for i, e in enumerate(events) if e.reasoning.source == order)
        assert last_delta < events.index(next(e for e in events if e.order_verdict.order == order))
    assert events[-1].result.pairwise.consistent and events[-1].result.verdict == pb.VERDICT_A


async def test_stream_validation_error_names_fields_by_their_stream_path(inference_mesh) -> None:
    async with inference_mesh(sim(), services=SERVICES) as m:
        events, err = await stream(pb_grpc.JudgeServiceStub(m.channel), [start(request(judge_type="vibes"))])
    # Failing before any event, the stream ends with the status alone (over REST: HTTP 400); an
    # error event, if any, would be the only event.
    assert all(e.WhichOneof("event") == "error" for e in events) and len(events) <= 1
    assert err is not None and set(violations(err)) == {"evaluate.judge_type"}


async def test_stream_cancel_stops_the_model_call(inference_mesh) -> None:
    slow = ScriptRule(match="Criterion: factual", response=verdict_json(4, " ".join(["word"] * 40)),
                      fault="token_delay_ms=200")
    async with inference_mesh(sim(slow), services=SERVICES) as m:
        stub = pb_grpc.JudgeServiceStub(m.channel)
        cancel = asyncio.Event()

        async def requests() -> AsyncIterator[pb.EvaluateStreamRequest]:
            yield start(request())
            await cancel.wait()
            yield pb.EvaluateStreamRequest(cancel=common_pb2.Cancel(reason="enough"))

        started = time.monotonic()
        events, err = await stream(stub, requests(),
                                   on_event=lambda e: e.WhichOneof("event") == "reasoning" and cancel.set())

        async def sim_saw_cancel() -> bool:
            return (await stats(m.sims[0]))["outcomes"].get("cancelled", 0) == 1

        await eventually(sim_saw_cancel, timeout_s=10)
    assert events[-1].WhichOneof("event") == "error" and events[-1].error.code == code_pb2.CANCELLED
    assert err is not None and err.code() == grpc.StatusCode.CANCELLED
    assert "enough" in events[-1].error.message
    assert time.monotonic() - started < 40 * 0.2  # it did not run to the end of the answer
