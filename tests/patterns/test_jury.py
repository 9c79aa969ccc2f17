"""The jury against a real server and scripted simulators: parallel jurors, aggregation and
agreement computed exactly on scripted scores, quorum with failing jurors, validation, the stream."""

from __future__ import annotations

import asyncio
import json
import math
import time

import grpc
import pytest
from google.rpc import code_pb2
from grpc_status import rpc_status

from llmmesh.common.v1 import common_pb2
from llmmesh.jury.v1 import jury_service_pb2 as pb
from llmmesh.jury.v1 import jury_service_pb2_grpc as pb_grpc
from llmmesh.simulator.config import ScriptRule
from tests.support.rpc import error_info, violations
from tests.support.sims import eventually, sim, stats

SERVICES = ("inference", "jury")
MODELS = ("m", "m2")


def verdict_json(score: float, reasoning: str = "scripted") -> str:
    return json.dumps({"reasoning": reasoning, "score": score})


def request(*panel: pb.Juror, **fields) -> pb.EvaluateRequest:
    return pb.EvaluateRequest(question="What is the capital of France?", answer="Paris.", panel=list(panel), **fields)


def juror(marker: str = "", **fields) -> pb.Juror:
    """A juror whose prompt variant carries `marker`, so a script rule can answer for it alone."""
    return pb.Juror(instructions=f"Juror marker {marker}." if marker else "", **{"model": "m", **fields})


async def stream(stub: pb_grpc.JuryServiceStub, req: pb.EvaluateRequest):
    call = stub.EvaluateStream(iter([pb.EvaluateStreamRequest(evaluate=req)]))
    events = []
    try:
        async for e in call:
            events.append(e)
    except grpc.aio.AioRpcError:
        pass
    return events, await call.code()


# ---- parallelism -----------------------------------------------------------------------------


async def test_jurors_run_in_parallel(inference_mesh) -> None:
    # Every juror's answer is 4 tokens at 150 ms each: >= 0.6 s per juror, >= 2.4 s in sequence.
    slow = "token_delay_ms=150"
    rules = tuple(ScriptRule(match=f"Juror marker J{i}.", response=verdict_json(4, f"j{i}"), fault=slow)
                  for i in range(4))
    panel = [juror(f"J{i}", model=MODELS[i % 2], name=f"j{i}") for i in range(4)]
    async with inference_mesh(sim(*rules, models=MODELS), services=SERVICES) as m:
        started = time.monotonic()
        resp = await pb_grpc.JuryServiceStub(m.channel).Evaluate(request(*panel))
        wall = time.monotonic() - started
        peak = (await stats(m.sims[0]))["peak_in_flight_generations"]
    assert [v.reasoning for v in resp.verdicts] == ["j0", "j1", "j2", "j3"]
    assert peak >= 4  # all four generations were in flight at once
    durations = [v.duration_ms / 1000 for v in resp.verdicts]
    assert min(durations) >= 0.6
    assert wall < sum(durations)  # a sequential panel takes at least the sum
    assert resp.usage.model_calls == 4


# ---- aggregation and agreement ---------------------------------------------------------------

# One scripted verdict per juror, on three different scales:
#   factual 5/5 and 4/5 (threshold 4), helpfulness 7/10 (threshold 6), clarity 2/5 (threshold 3).
PANEL = (juror("ONE", name="one", weight=1), juror("TWO", name="two", model="m2", weight=1),
         juror("THREE", name="three", criterion="helpfulness", weight=2),
         juror("FOUR", name="four", model="m2", criterion="clarity", weight=4))
SCORES = (5, 4, 7, 2)
NORMALISED = (1.0, 0.75, 6 / 9, 0.25)
WEIGHTS = (1, 1, 2, 4)
AGGREGATION_RULES = tuple(ScriptRule(match=f"Juror marker {marker}.", response=verdict_json(score, marker))
                          for marker, score in zip(("ONE", "TWO", "THREE", "FOUR"), SCORES, strict=True))


def weighted(xs: tuple[float, ...]) -> float:
    return sum(x * w for x, w in zip(xs, WEIGHTS, strict=True)) / sum(WEIGHTS)


@pytest.mark.parametrize(("aggregation", "score", "verdict"), [
    # mean 0.6667 >= mean threshold 0.6389
    (pb.AGGREGATION_UNSPECIFIED, sum(NORMALISED) / 4, pb.VERDICT_PASS),
    (pb.AGGREGATION_MEAN, sum(NORMALISED) / 4, pb.VERDICT_PASS),
    # median (0.75 + 0.6667) / 2 = 0.7083 >= median threshold (0.5556 + 0.75) / 2 = 0.6528
    (pb.AGGREGATION_MEDIAN, (0.75 + 6 / 9) / 2, pb.VERDICT_PASS),
    # three of four pass
    (pb.AGGREGATION_MAJORITY_VOTE, 0.75, pb.VERDICT_PASS),
    # the heavy clarity juror drags it down: 0.5104 < weighted threshold 0.5764
    (pb.AGGREGATION_WEIGHTED_MEAN, weighted(NORMALISED), pb.VERDICT_FAIL),
])
async def test_aggregations_are_exact_on_scripted_scores(inference_mesh, aggregation, score, verdict) -> None:
    async with inference_mesh(sim(*AGGREGATION_RULES, models=MODELS), services=SERVICES) as m:
        resp = await pb_grpc.JuryServiceStub(m.channel).Evaluate(request(*PANEL, aggregation=aggregation))
    assert resp.score == pytest.approx(score) and resp.verdict == verdict
    assert resp.aggregation == (aggregation or pb.AGGREGATION_MEAN)
    got = [(v.juror, v.model, v.criterion, v.score, v.verdict, v.reasoning) for v in resp.verdicts]
    assert got == [("one", "m", "factual", 5, pb.VERDICT_PASS, "ONE"),
                   ("two", "m2", "factual", 4, pb.VERDICT_PASS, "TWO"),
                   ("three", "m", "helpfulness", 7, pb.VERDICT_PASS, "THREE"),
                   ("four", "m2", "clarity", 2, pb.VERDICT_FAIL, "FOUR")]
    assert [v.normalized_score for v in resp.verdicts] == pytest.approx(NORMALISED)
    a = resp.agreement
    assert a.spread == pytest.approx(math.sqrt(sum((x - sum(NORMALISED) / 4) ** 2 for x in NORMALISED) / 4))
    assert (a.min_score, a.max_score) == (0.25, 1.0)
    assert a.verdict_agreement == 0.75  # three of four agree with the majority "pass"
    assert a.pairwise_agreement == 0.5  # of the 6 pairs, the 3 among the passing jurors agree
    assert (resp.quorum, list(resp.failed_jurors)) == (3, [])
    assert resp.usage.model_calls == 4


async def test_jurors_default_to_the_request_criterion_and_get_unique_names(inference_mesh) -> None:
    rules = (ScriptRule(match="Criterion: clarity\n", response=verdict_json(2)),
             ScriptRule(match="Criterion: relevance\n", response=verdict_json(5)))
    panel = (pb.Juror(model="m"), pb.Juror(model="m"), pb.Juror(name="m/clarity#2", model="m2"),
             pb.Juror(model="m", criterion="relevance"))
    async with inference_mesh(sim(*rules, models=MODELS), services=SERVICES) as m:
        resp = await pb_grpc.JuryServiceStub(m.channel).Evaluate(request(*panel, judge_type="clarity"))
    assert [(v.juror, v.criterion, v.score) for v in resp.verdicts] == [
        ("m/clarity", "clarity", 2), ("m/clarity#3", "clarity", 2), ("m/clarity#2", "clarity", 2),
        ("m/relevance", "relevance", 5)]


# ---- quorum ----------------------------------------------------------------------------------


async def test_a_failed_juror_is_listed_and_the_quorum_still_decides(inference_mesh) -> None:
    rules = (ScriptRule(match="Juror marker GARBLED.", response="I would say four out of five."),
             ScriptRule(match="Criterion: factual", response=verdict_json(5)))
    panel = (juror(), juror(model="m2"), juror(model="ghost"), juror("GARBLED", name="garbled"))
    async with inference_mesh(sim(*rules, models=MODELS), services=SERVICES, limits={"json_attempts": 2}) as m:
        resp = await pb_grpc.JuryServiceStub(m.channel).Evaluate(request(*panel, quorum=2))
    assert list(resp.failed_jurors) == ["ghost/factual", "garbled"]
    assert (resp.quorum, resp.score, resp.verdict) == (2, 1.0, pb.VERDICT_PASS)  # from the two that answered
    ok, ok2, ghost, garbled = resp.verdicts
    assert not ok.HasField("error") and not ok2.HasField("error") and ok.verdict == pb.VERDICT_PASS
    assert ghost.error.code == code_pb2.NOT_FOUND and "ghost" in ghost.error.message and not ghost.verdict
    assert garbled.error.code == code_pb2.UNAVAILABLE
    assert error_info(garbled.error).reason == "MALFORMED_MODEL_OUTPUT"
    assert resp.agreement.verdict_agreement == 1.0  # counted over the answering jurors only


async def test_below_quorum_is_unavailable_with_every_failure_summarised(inference_mesh) -> None:
    panel = (juror(), juror(model="ghost"), juror(model="phantom"))
    rule = ScriptRule(match="Criterion", response=verdict_json(4))
    async with inference_mesh(sim(rule, models=MODELS), services=SERVICES) as m:
        stub = pb_grpc.JuryServiceStub(m.channel)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.Evaluate(request(*panel))  # default quorum: 2 of 3
        with pytest.raises(grpc.aio.AioRpcError) as explicit:
            await stub.Evaluate(request(juror(), juror(model="m2"), juror(model="ghost"), quorum=3))
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "only 1 of 3 jurors answered, the quorum is 2" in err.value.details()
    assert "ghost/factual: NOT_FOUND" in err.value.details() and "phantom/factual: NOT_FOUND" in err.value.details()
    info = error_info(rpc_status.from_call(err.value))
    assert info.reason == "QUORUM_NOT_REACHED"
    assert dict(info.metadata) == {"quorum": "2", "answered": "1", "panel": "3",
                                   "failed_jurors": "ghost/factual,phantom/factual"}
    assert explicit.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "only 2 of 3 jurors answered, the quorum is 3" in explicit.value.details()


# ---- validation ------------------------------------------------------------------------------


async def test_invalid_requests_list_every_bad_field(inference_mesh) -> None:
    async with inference_mesh(sim(models=MODELS), services=SERVICES,
                              limits={"max_panel": 3, "max_output_tokens": 64}) as m:
        stub = pb_grpc.JuryServiceStub(m.channel)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.Evaluate(pb.EvaluateRequest(question="q", answer="", judge_type="vibes", aggregation=9,
                                                   options=common_pb2.GenerationOptions(max_tokens=100)))
        empty = violations(err.value)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.Evaluate(request(
                pb.Juror(name="x", model="m"), pb.Juror(name="x", model="m", weight=0),
                pb.Juror(model="m", criterion="vibes", weight=math.nan), pb.Juror(model="m", criterion="faithfulness"),
                quorum=5))
        panel = violations(err.value)
        assert not [r for r in (await stats(m.sims[0]))["recent"] if r["path"] == "/api/chat"]
    # No panel is not a violation: the default panel judges (test_default_panel_*).
    assert set(empty) == {"answer", "judge_type", "aggregation", "options.max_tokens"}
    assert "at most the server maximum 3" in panel["panel"]
    assert set(panel) == {"panel", "panel[1].name", "panel[1].weight", "panel[2].criterion", "panel[2].weight",
                          "contexts", "quorum"}
    assert "got 4" in panel["panel"] and "duplicates panel[0].name" in panel["panel[1].name"]
    assert "panel[3]" in panel["contexts"] and "valid: clarity, factual" in panel["panel[2].criterion"]


# ---- the stream ------------------------------------------------------------------------------


async def test_stream_emits_each_verdict_as_it_arrives_then_the_result(inference_mesh) -> None:
    # The first juror is slow, so its verdict arrives last; the result keeps panel order.
    rules = (ScriptRule(match="Juror marker SLOW.", response=verdict_json(3), fault="token_delay_ms=150"),
             ScriptRule(match="Criterion", response=verdict_json(5)))
    panel = (juror("SLOW", name="slow"), juror(name="quick"), juror(name="quicker", model="m2"))
    async with inference_mesh(sim(*rules, models=MODELS), services=SERVICES) as m:
        events, code = await stream(pb_grpc.JuryServiceStub(m.channel), request(*panel))
    assert code == grpc.StatusCode.OK
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds == ["juror_verdict"] * 3 + ["result"]
    arrived = [e.juror_verdict.juror for e in events[:3]]
    assert sorted(arrived) == ["quick", "quicker", "slow"] and arrived[-1] == "slow"
    result = events[-1].result
    assert [v.juror for v in result.verdicts] == ["slow", "quick", "quicker"]
    assert [v.score for v in result.verdicts] == [3, 5, 5]
    assert result.score == pytest.approx((0.5 + 1 + 1) / 3) and result.usage.model_calls == 3


async def test_stream_below_quorum_ends_with_an_error_event_after_every_verdict(inference_mesh) -> None:
    panel = (juror(), juror(model="ghost"), juror(model="phantom"))
    rule = ScriptRule(match="Criterion", response=verdict_json(4))
    async with inference_mesh(sim(rule, models=MODELS), services=SERVICES) as m:
        events, code = await stream(pb_grpc.JuryServiceStub(m.channel), request(*panel))
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds == ["juror_verdict"] * 3 + ["error"]
    assert sum(e.juror_verdict.HasField("error") for e in events[:3]) == 2
    assert events[-1].error.code == code_pb2.UNAVAILABLE and code == grpc.StatusCode.UNAVAILABLE
    assert error_info(events[-1].error).reason == "QUORUM_NOT_REACHED"


async def test_stream_cancel_stops_the_jurors_still_deliberating(inference_mesh) -> None:
    slow = "token_delay_ms=300"
    rules = (ScriptRule(match="Juror marker SLOW", response=verdict_json(3, " ".join(["word"] * 30)), fault=slow),
             ScriptRule(match="Criterion", response=verdict_json(5)))
    panel = (juror(name="quick"), juror("SLOW-1", name="slow1"), juror("SLOW-2", name="slow2", model="m2"))
    async with inference_mesh(sim(*rules, models=MODELS), services=SERVICES) as m:
        first_verdict = asyncio.Event()

        async def requests():
            yield pb.EvaluateStreamRequest(evaluate=request(*panel))
            await first_verdict.wait()
            yield pb.EvaluateStreamRequest(cancel=common_pb2.Cancel(reason="seen enough"))

        call = pb_grpc.JuryServiceStub(m.channel).EvaluateStream(requests())
        events = []
        with pytest.raises(grpc.aio.AioRpcError):
            async for e in call:
                events.append(e)
                first_verdict.set()

        async def slow_jurors_cancelled() -> bool:
            return (await stats(m.sims[0]))["outcomes"].get("cancelled", 0) == 2

        await eventually(slow_jurors_cancelled, timeout_s=10)
    assert [e.WhichOneof("event") for e in events] == ["juror_verdict", "error"]
    assert events[0].juror_verdict.juror == "quick"
    assert events[1].error.code == code_pb2.CANCELLED and await call.code() == grpc.StatusCode.CANCELLED
