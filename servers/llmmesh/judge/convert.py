"""Judge results and events → protobuf."""

from __future__ import annotations

from llmmesh.common.v1 import common_pb2
from llmmesh.judge.criteria import Criterion
from llmmesh.judge.events import JudgeEvent, JudgeResult, OrderVerdict, ReasoningDelta, Verdict
from llmmesh.judge.v1 import judge_service_pb2 as pb

VERDICTS = {Verdict.PASS: pb.VERDICT_PASS, Verdict.FAIL: pb.VERDICT_FAIL, Verdict.A: pb.VERDICT_A,
            Verdict.B: pb.VERDICT_B, Verdict.TIE: pb.VERDICT_TIE}


def rubric(c: Criterion) -> pb.Rubric:
    return pb.Rubric(name=c.name, description=c.description, min_score=c.min_score, max_score=c.max_score,
                     anchors=[pb.ScoreAnchor(score=a.score, description=a.description) for a in c.anchors],
                     pass_threshold=c.pass_threshold)


def order(o: OrderVerdict) -> pb.PairwiseOrder:
    return pb.PairwiseOrder(order=o.order, winner=VERDICTS[o.winner], reasoning=o.reasoning)


def response(r: JudgeResult) -> pb.EvaluateResponse:
    out = pb.EvaluateResponse(score=r.score, verdict=VERDICTS[r.verdict], judge=r.judge, reasoning=r.reasoning,
                              criterion=r.criterion.name, usage=r.usage.to_proto())
    if r.pairwise is None:
        out.min_score, out.max_score = r.criterion.min_score, r.criterion.max_score
    else:
        out.min_score, out.max_score = 0.0, 1.0
        out.pairwise.CopyFrom(pb.PairwiseResult(orders=[order(o) for o in r.pairwise.orders],
                                                consistent=r.pairwise.consistent))
    return out


def stream_event(event: JudgeEvent) -> pb.EvaluateStreamResponse:
    if isinstance(event, ReasoningDelta):
        return pb.EvaluateStreamResponse(reasoning=common_pb2.TokenDelta(text=event.text, source=event.source))
    if isinstance(event, OrderVerdict):
        return pb.EvaluateStreamResponse(order_verdict=order(event))
    return pb.EvaluateStreamResponse(result=response(event))
