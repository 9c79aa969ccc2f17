"""Comparison events and results → protobuf (jurors' verdicts and pairwise orders as the jury and
the judge convert them)."""

from __future__ import annotations

from llmmesh.common.v1 import common_pb2
from llmmesh.compare.events import (
    Answer,
    AnswerDelta,
    AnswerVerdict,
    CompareEvent,
    CompareResult,
    Comparison,
    ModelScore,
    RankingEntry,
)
from llmmesh.compare.v1 import compare_service_pb2 as pb
from llmmesh.judge import convert as judge_convert
from llmmesh.jury import convert as jury_convert
from llmmesh.jury.v1 import jury_service_pb2 as jury_pb


def answer(a: Answer) -> pb.Answer:
    return pb.Answer(model=a.model, text=a.text, latency_ms=a.latency_ms,
                     time_to_first_token_ms=a.time_to_first_token_ms, output_tokens=a.output_tokens,
                     tokens_per_second=a.tokens_per_second)


def score(s: ModelScore) -> pb.ModelScore:
    a = s.jury.agreement
    return pb.ModelScore(
        model=s.model, score=s.score, criteria=[pb.CriterionScore(criterion=c, score=v) for c, v in s.criteria],
        verdicts=[jury_convert.verdict(v) for v in s.jury.verdicts],
        agreement=jury_pb.Agreement(spread=a.spread, min_score=a.min_score, max_score=a.max_score,
                                    verdict_agreement=a.verdict_agreement, pairwise_agreement=a.pairwise_agreement))


def comparison(c: Comparison) -> pb.PairwiseComparison:
    return pb.PairwiseComparison(model_a=c.model_a, model_b=c.model_b, winner=c.winner, consistent=c.consistent,
                                 orders=[judge_convert.order(o) for o in c.orders], judge=c.judge)


def ranking_entry(r: RankingEntry) -> pb.RankingEntry:
    return pb.RankingEntry(model=r.model, score=r.score, rank=r.rank, wins=r.wins, ties=r.ties,
                           latency_ms=r.latency_ms, tokens_per_second=r.tokens_per_second,
                           output_tokens=r.output_tokens)


def response(r: CompareResult) -> pb.RunResponse:
    return pb.RunResponse(ranking=[ranking_entry(e) for e in r.ranking], answers=[answer(a) for a in r.answers],
                          scores=[score(s) for s in r.scores], comparisons=[comparison(c) for c in r.comparisons],
                          criteria=r.criteria, usage=r.usage.to_proto())


def stream_event(event: CompareEvent) -> pb.RunStreamResponse:
    if isinstance(event, AnswerDelta):
        return pb.RunStreamResponse(delta=common_pb2.TokenDelta(text=event.text, source=event.model))
    if isinstance(event, Answer):
        return pb.RunStreamResponse(answer=answer(event))
    if isinstance(event, AnswerVerdict):
        return pb.RunStreamResponse(verdict=pb.AnswerVerdict(model=event.model,
                                                             verdict=jury_convert.verdict(event.verdict)))
    if isinstance(event, ModelScore):
        return pb.RunStreamResponse(score=score(event))
    if isinstance(event, Comparison):
        return pb.RunStreamResponse(comparison=comparison(event))
    return pb.RunStreamResponse(result=response(event))
