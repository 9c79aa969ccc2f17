"""Jury results and events → protobuf."""

from __future__ import annotations

from llmmesh.framework.errors import to_status
from llmmesh.framework.request_context import request_id
from llmmesh.judge.events import Verdict
from llmmesh.jury.aggregation import Method
from llmmesh.jury.events import JurorVerdict, JuryEvent, JuryResult
from llmmesh.jury.v1 import jury_service_pb2 as pb

_AGGREGATIONS = {Method.MEAN: pb.AGGREGATION_MEAN, Method.MEDIAN: pb.AGGREGATION_MEDIAN,
                 Method.MAJORITY_VOTE: pb.AGGREGATION_MAJORITY_VOTE, Method.WEIGHTED_MEAN: pb.AGGREGATION_WEIGHTED_MEAN}
_VERDICTS = {Verdict.PASS: pb.VERDICT_PASS, Verdict.FAIL: pb.VERDICT_FAIL}


def verdict(jv: JurorVerdict) -> pb.JurorVerdict:
    out = pb.JurorVerdict(juror=jv.juror.name, model=jv.model, criterion=jv.juror.criterion.name,
                          duration_ms=jv.duration_ms)
    if jv.error is not None:
        out.error.CopyFrom(to_status(jv.error, request_id.get()))
    elif jv.verdict is not None:
        out.score, out.normalized_score, out.verdict, out.reasoning = (jv.score, jv.normalised, _VERDICTS[jv.verdict],
                                                                       jv.reasoning)
    return out


def response(r: JuryResult) -> pb.EvaluateResponse:
    a = r.agreement
    return pb.EvaluateResponse(
        score=r.score, verdict=_VERDICTS[r.verdict], aggregation=_AGGREGATIONS[r.method],
        verdicts=[verdict(jv) for jv in r.verdicts],
        agreement=pb.Agreement(spread=a.spread, min_score=a.min_score, max_score=a.max_score,
                               verdict_agreement=a.verdict_agreement, pairwise_agreement=a.pairwise_agreement),
        failed_jurors=list(r.failed), quorum=r.quorum, usage=r.usage.to_proto())


def stream_event(event: JuryEvent) -> pb.EvaluateStreamResponse:
    if isinstance(event, JurorVerdict):
        return pb.EvaluateStreamResponse(juror_verdict=verdict(event))
    return pb.EvaluateStreamResponse(result=response(event))
