"""LLM-as-a-judge: grade one answer on a criterion, or compare two answers in both orders.

Plain async logic yielding small events; the servicer translates them. The jury imports
`grade` to run its jurors with exactly the judge's prompts and parsing.

Every verdict is one structured call (llmmesh.patterns.structured): bounded by its schema's token
budget, a malformed answer repaired, and its reasoning passed through the loop guard. Before the
call, the prompt is checked against the judge model's context window: it is all the caller's
text, so a prompt that does not fit is INVALID_ARGUMENT naming the caller's longest field.

Pairwise mode asks the judge twice, concurrently: once with A shown first and once with B shown
first. Each order's winner is mapped back to the original labels. If both orders pick the same
winner the comparison is consistent and that winner stands; if they disagree the judge was
swayed by position rather than content, so neither answer has shown itself better and the
verdict is "tie" (score 0.5), with `consistent` false so callers can tell this apart from a tie
both orders agreed on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from llmmesh.common.model_call import ChatMessage, Sampling
from llmmesh.judge import prompts
from llmmesh.judge.case import Case
from llmmesh.judge.criteria import Criterion
from llmmesh.patterns.context import fit, room
from llmmesh.patterns.fanout import fan_in
from llmmesh.patterns.json_budget import token_budget
from llmmesh.patterns.model_client import ModelClient
from llmmesh.patterns.options import step_sampling
from llmmesh.patterns.repetition import cut_repetition
from llmmesh.patterns.structured import JsonDelta, JsonResult, stream_json

PASS, FAIL = "pass", "fail"
A, B, TIE = "a", "b", "tie"
ORDER_AB, ORDER_BA = "a,b", "b,a"
PAIRWISE_SCORE = {A: 1.0, B: 0.0, TIE: 0.5}


class Mode(Enum):
    POINTWISE = "pointwise"
    PAIRWISE = "pairwise"


@dataclass(frozen=True)
class Evaluation:
    """One validated judge request."""

    case: Case
    criterion: Criterion
    mode: Mode
    # Empty: the inference service's default model.
    model: str
    sampling: Sampling
    # Structured-output attempts before a malformed answer becomes an error.
    attempts: int
    # The caller's text in the prompts by request path (Case.fields, rubric), to name the field
    # that is too long when a prompt does not fit the judge's context window. Empty: the case's.
    fields: Mapping[str, str] = field(default_factory=dict)

    def caller_fields(self) -> Mapping[str, str]:
        return self.fields or self.case.fields()


# ---- events ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReasoningDelta:
    """Raw text of the judge's JSON answer as it streams. A retried attempt streams again."""

    text: str
    # Pairwise: the order it belongs to ("a,b" / "b,a"); empty for pointwise.
    source: str = ""


@dataclass(frozen=True)
class OrderVerdict:
    # "a,b" when A was shown first, "b,a" when B was.
    order: str
    # In the original labels: "a", "b" or "tie".
    winner: str
    reasoning: str
    model: str


@dataclass(frozen=True)
class Pairwise:
    orders: tuple[OrderVerdict, ...]
    consistent: bool


@dataclass(frozen=True)
class Judgement:
    """The final result. Pointwise: score on the criterion's scale, verdict pass/fail.
    Pairwise: score 1 (A wins), 0 (B wins) or 0.5 (tie), verdict "a", "b" or "tie"."""

    criterion: Criterion
    score: float
    verdict: str
    reasoning: str
    # The model that judged, as reported by the inference service.
    judge: str
    pairwise: Pairwise | None = None


JudgeEvent = ReasoningDelta | OrderVerdict | Judgement


# ---- pointwise -------------------------------------------------------------------------------

async def fitted(client: ModelClient, model: str, sampling: Sampling, schema: dict[str, Any],
                 messages: list[ChatMessage], fields: Mapping[str, str]) -> list[ChatMessage]:
    """`messages` when they leave the verdict room in the judge's context window; otherwise
    INVALID_ARGUMENT naming the longest of the caller's `fields`. The judge's prompt is all the
    caller's text, so there is nothing of the service's own to drop."""
    space = await room(client, model, step_sampling(sampling, token_budget(schema)))
    return fit(space, messages, fields)


async def grading_messages(client: ModelClient, model: str, criterion: Criterion, case: Case, sampling: Sampling,
                           *, instructions: str = "", fields: Mapping[str, str] | None = None) -> list[ChatMessage]:
    """The pointwise prompt, checked against the window of `model` (see `fitted`)."""
    return await fitted(client, model, sampling, prompts.pointwise_schema(criterion),
                        prompts.pointwise_messages(criterion, case, instructions), fields or case.fields())


async def grade(client: ModelClient, model: str, criterion: Criterion, case: Case, sampling: Sampling,
                *, attempts: int, instructions: str = "",
                fields: Mapping[str, str] | None = None) -> AsyncIterator[ReasoningDelta | Judgement]:
    """Reasoning deltas, then the Judgement; MalformedModelOutput after `attempts` bad answers.
    Each attempt is bounded by the schema's token budget and a failed one is repaired
    (llmmesh.patterns.structured)."""
    messages = await grading_messages(client, model, criterion, case, sampling, instructions=instructions,
                                      fields=fields)
    async for item in stream_json(client, model, messages, prompts.pointwise_schema(criterion), sampling=sampling,
                                  attempts=attempts, text_field="reasoning"):
        if isinstance(item, JsonDelta):
            yield ReasoningDelta(item.text)
        else:
            score = float(item.value["score"])
            yield Judgement(criterion, score, PASS if criterion.passes(score) else FAIL,
                            cut_repetition(item.value["reasoning"]), item.completion.model)


# ---- pairwise --------------------------------------------------------------------------------

def _winner(order: str, position: str) -> str:
    """A position ("1", "2", "tie") in `order` → the original label."""
    if position == prompts.TIE:
        return TIE
    first, second = order.split(",")
    return first if position == prompts.FIRST else second


async def _one_order(client: ModelClient, ev: Evaluation, order: str) -> AsyncIterator[ReasoningDelta | OrderVerdict]:
    result: JsonResult | None = None
    async for item in stream_json(client, ev.model, _order_messages(ev, order), prompts.PAIRWISE_SCHEMA,
                                  sampling=ev.sampling, attempts=ev.attempts, text_field="reasoning"):
        if isinstance(item, JsonDelta):
            yield ReasoningDelta(item.text, order)
        else:
            result = item
    assert result is not None  # stream_json ends with a result or raises
    value: dict[str, Any] = result.value
    yield OrderVerdict(order, _winner(order, value["winner"]), cut_repetition(value["reasoning"]),
                       result.completion.model)


def _order_messages(ev: Evaluation, order: str) -> list[ChatMessage]:
    case = ev.case
    first, second = (case.answer, case.answer_b) if order == ORDER_AB else (case.answer_b, case.answer)
    return prompts.pairwise_messages(ev.criterion, case, first, second)


async def compare(client: ModelClient, ev: Evaluation) -> AsyncIterator[JudgeEvent]:
    """Both orders concurrently; their deltas and verdicts as they come, then the Judgement.
    A failure of either order fails the comparison (and cancels the other)."""
    # Both orders' prompts are the same length: one check covers both.
    await fitted(client, ev.model, ev.sampling, prompts.PAIRWISE_SCHEMA, _order_messages(ev, ORDER_AB),
                 ev.caller_fields())
    verdicts: dict[str, OrderVerdict] = {}
    async for event in fan_in(_one_order(client, ev, ORDER_AB), _one_order(client, ev, ORDER_BA)):
        if isinstance(event, OrderVerdict):
            verdicts[event.order] = event
        yield event
    ab, ba = verdicts[ORDER_AB], verdicts[ORDER_BA]
    consistent = ab.winner == ba.winner
    winner = ab.winner if consistent else TIE
    reasoning = f"[{ORDER_AB}] {ab.reasoning}\n[{ORDER_BA}] {ba.reasoning}"
    yield Judgement(ev.criterion, PAIRWISE_SCORE[winner], winner, reasoning, ab.model,
                    Pairwise((ab, ba), consistent))


# ---- entry points ----------------------------------------------------------------------------

def run(client: ModelClient, ev: Evaluation) -> AsyncIterator[JudgeEvent]:
    if ev.mode is Mode.PAIRWISE:
        return compare(client, ev)
    return grade(client, ev.model, ev.criterion, ev.case, ev.sampling, attempts=ev.attempts,
                 fields=ev.caller_fields())


async def evaluate(client: ModelClient, ev: Evaluation) -> Judgement:
    """The unary face: the same run, only its result."""
    async for event in run(client, ev):
        if isinstance(event, Judgement):
            return event
    raise AssertionError("unreachable: a judge run ends with a Judgement or raises")
