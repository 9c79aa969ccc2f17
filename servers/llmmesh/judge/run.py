"""LLM-as-a-judge: grade one answer on a criterion, or compare two answers in both orders.

Plain async logic yielding small events; the servicer translates them. The jury imports `fitted`
and `grade` to run its jurors with exactly the judge's schema and parsing.

Every verdict is one structured call (llmmesh.patterns.structured): bounded by its schema's token
budget, a malformed answer repaired, and its reasoning passed through the loop guard. Before the
call, the prompt is checked against the judge model's context window: it is all the caller's
text, so a prompt that does not fit is INVALID_ARGUMENT naming the caller's longest field.

Pairwise mode asks the judge twice, concurrently: once with A shown first and once with B shown
first. Each order's winner is mapped back to the original labels. If both orders pick the same
winner the comparison is consistent and that winner stands; if they disagree the judge was
swayed by position rather than content, so neither answer has shown itself better and the
verdict is TIE (score 0.5), with `consistent` false so callers can tell this apart from a tie
both orders agreed on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from typing import Any

from llmmesh.common.model_call import ChatMessage, Sampling
from llmmesh.judge import prompts
from llmmesh.judge.criteria import Criterion
from llmmesh.judge.events import (
    ORDER_AB,
    ORDER_BA,
    Grade,
    JudgeEvent,
    JudgeResult,
    OrderVerdict,
    Pairwise,
    ReasoningDelta,
    Verdict,
)
from llmmesh.judge.request import JudgeRequest, Mode
from llmmesh.patterns.context import fit, room
from llmmesh.patterns.fanout import fan_in
from llmmesh.patterns.json_budget import token_budget
from llmmesh.patterns.model_client import ModelClient, UsageMeter, metered
from llmmesh.patterns.options import step_sampling
from llmmesh.patterns.repetition import cut_repetition
from llmmesh.patterns.structured import JsonDelta, JsonResult, stream_json

PAIRWISE_SCORE = {Verdict.A: 1.0, Verdict.B: 0.0, Verdict.TIE: 0.5}


async def run(client: ModelClient, req: JudgeRequest) -> AsyncIterator[JudgeEvent]:
    """Reasoning deltas (and, pairwise, each order's verdict), then the JudgeResult."""
    with metered() as meter:
        steps = _compare(client, req, meter) if req.mode is Mode.PAIRWISE else _grade_one(client, req, meter)
        async with aclosing(steps):
            async for event in steps:
                yield event


# ---- pointwise -------------------------------------------------------------------------------

async def fitted(client: ModelClient, model: str, sampling: Sampling, schema: dict[str, Any],
                 messages: list[ChatMessage], fields: Mapping[str, str]) -> list[ChatMessage]:
    """`messages` when they leave the verdict room in the judge's context window; otherwise
    INVALID_ARGUMENT naming the longest of the caller's `fields`. The judge's prompt is all the
    caller's text, so there is nothing of the service's own to drop."""
    space = await room(client, model, step_sampling(sampling, token_budget(schema)))
    return fit(space, messages, fields)


async def grade(client: ModelClient, model: str, criterion: Criterion, messages: list[ChatMessage],
                sampling: Sampling, *, attempts: int) -> AsyncIterator[ReasoningDelta | Grade]:
    """Reasoning deltas, then the Grade of the pointwise prompt `messages` (fitted already);
    MalformedModelOutput after `attempts` bad answers. Each attempt is bounded by the schema's
    token budget and a failed one is repaired (llmmesh.patterns.structured)."""
    async for item in stream_json(client, model, messages, prompts.pointwise_schema(criterion), sampling=sampling,
                                  attempts=attempts, text_field="reasoning"):
        if isinstance(item, JsonDelta):
            yield ReasoningDelta(item.text)
        else:
            score = float(item.value["score"])
            yield Grade(score, Verdict.PASS if criterion.passes(score) else Verdict.FAIL,
                        cut_repetition(item.value["reasoning"]), item.completion.model)


async def _grade_one(client: ModelClient, req: JudgeRequest, meter: UsageMeter) -> AsyncIterator[JudgeEvent]:
    c = req.criterion
    messages = await fitted(client, req.model, req.sampling, prompts.pointwise_schema(c),
                            prompts.pointwise_messages(c, req.case), req.caller_fields())
    async for event in grade(client, req.model, c, messages, req.sampling, attempts=req.attempts):
        if isinstance(event, Grade):
            yield JudgeResult(c, event.score, event.verdict, event.reasoning, event.judge, meter)
        else:
            yield event


# ---- pairwise --------------------------------------------------------------------------------

def _winner(order: str, position: str) -> Verdict:
    """A position ("1", "2", "tie") in `order` → the original label."""
    if position == prompts.TIE:
        return Verdict.TIE
    first, second = order.split(",")
    return Verdict(first if position == prompts.FIRST else second)


async def _one_order(client: ModelClient, req: JudgeRequest,
                     order: str) -> AsyncIterator[ReasoningDelta | OrderVerdict]:
    result: JsonResult | None = None
    async for item in stream_json(client, req.model, _order_messages(req, order), prompts.PAIRWISE_SCHEMA,
                                  sampling=req.sampling, attempts=req.attempts, text_field="reasoning"):
        if isinstance(item, JsonDelta):
            yield ReasoningDelta(item.text, order)
        else:
            result = item
    assert result is not None  # stream_json ends with a result or raises
    value: dict[str, Any] = result.value
    yield OrderVerdict(order, _winner(order, value["winner"]), cut_repetition(value["reasoning"]),
                       result.completion.model)


def _order_messages(req: JudgeRequest, order: str) -> list[ChatMessage]:
    case = req.case
    first, second = (case.answer, case.answer_b) if order == ORDER_AB else (case.answer_b, case.answer)
    return prompts.pairwise_messages(req.criterion, case, first, second)


async def _compare(client: ModelClient, req: JudgeRequest, meter: UsageMeter) -> AsyncIterator[JudgeEvent]:
    """Both orders concurrently; their deltas and verdicts as they come, then the JudgeResult.
    A failure of either order fails the comparison (and cancels the other)."""
    # Both orders' prompts are the same length: one check covers both.
    await fitted(client, req.model, req.sampling, prompts.PAIRWISE_SCHEMA, _order_messages(req, ORDER_AB),
                 req.caller_fields())
    verdicts: dict[str, OrderVerdict] = {}
    async for event in fan_in(_one_order(client, req, ORDER_AB), _one_order(client, req, ORDER_BA)):
        if isinstance(event, OrderVerdict):
            verdicts[event.order] = event
        yield event
    ab, ba = verdicts[ORDER_AB], verdicts[ORDER_BA]
    consistent = ab.winner == ba.winner
    winner = ab.winner if consistent else Verdict.TIE
    reasoning = f"[{ORDER_AB}] {ab.reasoning}\n[{ORDER_BA}] {ba.reasoning}"
    yield JudgeResult(req.criterion, PAIRWISE_SCORE[winner], winner, reasoning, ab.model, meter,
                      Pairwise((ab, ba), consistent))
