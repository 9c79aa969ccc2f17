"""A comparison: every model answers the same messages at once, each answer streamed as it is
written; as soon as an answer is complete a jury scores it (the jury's own run: one juror per judge
and criterion, in parallel, aggregated by the mean), so scoring overlaps the slower models' answers.
With `pairwise`, every pair of answers is then compared by the first judge on the first criterion
in both orders (the judge's pairwise run: orders that disagree are a tie), and wins are counted.

The ranking orders models by the jury's score, then by wins; equal score and wins share a rank.
Answers are the models' own words (bounded and with the anti-repetition default, never repaired):
what a model does with the prompt is what is being compared. Any model's failure fails the run.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence

from llmmesh.compare import prompts
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
from llmmesh.compare.request import CompareRequest
from llmmesh.judge.events import JudgeResult, Verdict
from llmmesh.judge.request import Case, JudgeRequest, Mode
from llmmesh.judge.run import run as judge_run
from llmmesh.jury.aggregation import Method, Vote, aggregate
from llmmesh.jury.events import JurorVerdict, JuryResult
from llmmesh.jury.request import JuryRequest
from llmmesh.jury.run import run as jury_run
from llmmesh.patterns.context import fit, room
from llmmesh.patterns.fanout import fan_in
from llmmesh.patterns.model_client import Completion, ModelClient, metered
from llmmesh.patterns.options import step_sampling
from llmmesh.patterns.service import result_of


async def run(client: ModelClient, req: CompareRequest) -> AsyncIterator[CompareEvent]:
    with metered() as meter:
        answers: dict[str, Answer] = {}
        scores: dict[str, ModelScore] = {}
        async for event in fan_in(*(_answer_and_score(client, req, model) for model in req.models)):
            if isinstance(event, Answer):
                answers[event.model] = event
            elif isinstance(event, ModelScore):
                scores[event.model] = event
            yield event
        comparisons: dict[tuple[str, str], Comparison] = {}
        if req.pairwise:
            pairs = list(itertools.combinations(req.models, 2))
            async for comparison in fan_in(*(_compare(client, req, answers[a], answers[b]) for a, b in pairs)):
                comparisons[comparison.model_a, comparison.model_b] = comparison
                yield comparison
        ordered = tuple(comparisons[p] for p in itertools.combinations(req.models, 2) if p in comparisons)
        yield CompareResult(ranking(req.models, answers, scores, ordered), tuple(answers[m] for m in req.models),
                            tuple(scores[m] for m in req.models), ordered, tuple(c.name for c in req.criteria),
                            meter)


async def _answer_and_score(client: ModelClient, req: CompareRequest, model: str) -> AsyncIterator[CompareEvent]:
    answer: Answer | None = None
    async for event in _answer(client, req, model):
        if isinstance(event, Answer):
            answer = event
        yield event
    assert answer is not None  # _answer ends with its Answer or raises
    jury = JuryRequest(Case(req.question, answer.text, (), req.reference), req.panel, Method.MEAN,
                       len(req.panel) // 2 + 1, req.judge_sampling, req.attempts, req.fields)
    async for event in jury_run(client, jury):
        if isinstance(event, JurorVerdict):
            yield AnswerVerdict(model, event)
        else:
            yield _model_score(model, req, event)


async def _answer(client: ModelClient, req: CompareRequest, model: str) -> AsyncIterator[AnswerDelta | Answer]:
    space = await room(client, model, step_sampling(req.sampling, prompts.ANSWER_TOKENS, free_text=True))
    messages = fit(space, list(req.messages), req.fields)
    started = time.perf_counter()
    first_token: float | None = None
    completion: Completion | None = None
    async for item in client.stream(model, messages, sampling=space.sampling_for(messages)):
        if isinstance(item, Completion):
            completion = item
        elif item:
            first_token = first_token or time.perf_counter()
            yield AnswerDelta(model, item)
    assert completion is not None  # stream() ends with a Completion or raises
    ended = time.perf_counter()
    ttft = ((first_token or ended) - started) * 1000
    generating = ended - (first_token or started)
    rate = completion.tokens_per_second or (completion.output_tokens / generating if generating > 0 else 0.0)
    yield Answer(model, completion.text, (ended - started) * 1000, ttft, completion.output_tokens, rate)


def _model_score(model: str, req: CompareRequest, jury: JuryResult) -> ModelScore:
    per_criterion = []
    for criterion in req.criteria:
        votes = [Vote(v.normalised, criterion.normalise(criterion.pass_threshold), v.verdict is Verdict.PASS)
                 for v in jury.verdicts if v.juror.criterion.name == criterion.name and v.error is None]
        if votes:
            per_criterion.append((criterion.name, aggregate(votes, Method.MEAN)[0]))
    return ModelScore(model, jury.score, tuple(per_criterion), jury)


async def _compare(client: ModelClient, req: CompareRequest, a: Answer, b: Answer) -> AsyncIterator[Comparison]:
    judged = JudgeRequest(Case(req.question, a.text, (), req.reference, b.text), req.criteria[0], Mode.PAIRWISE,
                          req.judge, req.judge_sampling, req.attempts, req.fields)
    result = await result_of(judge_run(client, judged), JudgeResult)
    assert result.pairwise is not None
    winner = {Verdict.A: a.model, Verdict.B: b.model}.get(result.verdict, "")
    yield Comparison(a.model, b.model, winner, result.pairwise.consistent, result.pairwise.orders, result.judge)


def ranking(models: Sequence[str], answers: dict[str, Answer], scores: dict[str, ModelScore],
            comparisons: Sequence[Comparison]) -> tuple[RankingEntry, ...]:
    wins: Counter[str] = Counter()
    ties: Counter[str] = Counter()
    for c in comparisons:
        if c.winner:
            wins[c.winner] += 1
        else:
            ties[c.model_a] += 1
            ties[c.model_b] += 1

    def merit(model: str) -> tuple[float, int]:
        return round(scores[model].score, 9), wins[model]

    # Models that tie share a rank and keep the request's order (stable sort): a latency tie-break
    # would make the listing differ from run to run.
    ordered = sorted(models, key=lambda m: (-merit(m)[0], -merit(m)[1]))
    return tuple(
        RankingEntry(m, scores[m].score, 1 + sum(merit(o) > merit(m) for o in models), wins[m], ties[m],
                     answers[m].latency_ms, answers[m].tokens_per_second, answers[m].output_tokens)
        for m in ordered)
