"""The Self-Refine loop: draft, critique, revise, until good enough, out of rounds, or no better.

Round 1 scores the first draft (generated, or the caller's `initial_draft`). Every later round
revises the best draft so far with its feedback and scores the revision. A revision that scores
no higher than the best draft ends the run (NO_IMPROVEMENT) and the earlier, better draft is the
result; checks run in the order threshold, no improvement, rounds exhausted.

Every step is bounded: a draft gets a budget that fits it (`prompts.revision_budget`) and the
anti-repetition sampling, and passes the loop guard (`patterns.free_text`); a critique is a
bounded schema. Every prompt fits the model's context window (`patterns.context`): the caller's
own text must fit before any model is called, a generated draft is clipped if it would not.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from llmmesh.common.model_call import ChatMessage
from llmmesh.patterns.context import Room, fit, fit_text, room
from llmmesh.patterns.free_text import stream_text
from llmmesh.patterns.json_budget import token_budget
from llmmesh.patterns.model_client import Completion, ModelClient, metered
from llmmesh.patterns.options import step_sampling
from llmmesh.patterns.repetition import cut_repetition
from llmmesh.patterns.structured import complete_json
from llmmesh.reflection import prompts
from llmmesh.reflection.events import (
    CritiqueReady,
    DraftDelta,
    DraftReady,
    ReflectionEvent,
    ReflectionResult,
    RoundRecord,
    StopReason,
)
from llmmesh.reflection.request import ReflectionRequest

_CALLER_TEXT = ("task", "criteria", "initial_draft")


async def run(client: ModelClient, req: ReflectionRequest) -> AsyncIterator[ReflectionEvent]:
    """Every event of the run; the last one is the ReflectionResult."""
    with metered() as meter:
        critic_room = await room(client, req.critic_model or req.model,
                                 step_sampling(req.sampling, token_budget(prompts.CRITIQUE_SCHEMA)))
        # The writer's model as the inference service resolves it ("" is its default model).
        model = await _check_fits(client, req, critic_room)
        history: list[RoundRecord] = []
        best: RoundRecord | None = None
        stop = StopReason.MAX_ROUNDS
        for round_ in range(1, req.max_rounds + 1):
            if best is None and req.initial_draft.strip():
                draft = req.initial_draft
            else:
                async for item in _write(client, req, best):
                    if isinstance(item, Completion):
                        draft, model = item.text, item.model
                    else:
                        yield DraftDelta(round_, item)
            yield DraftReady(round_, draft)

            messages = _fit_draft(critic_room, req, draft,
                                  lambda d: prompts.critique_messages(req.task, req.criteria, d))
            critique = await complete_json(client, req.critic_model or req.model, messages, prompts.CRITIQUE_SCHEMA,
                                           sampling=critic_room.sampling, attempts=req.json_attempts)
            record = RoundRecord(round_, draft, float(critique.value["score"]),
                                 cut_repetition(critique.value["feedback"]))
            history.append(record)
            yield CritiqueReady(round_, record.score, record.feedback)

            if best is not None and record.score <= best.score:
                stop = StopReason.NO_IMPROVEMENT
                break
            best = record
            if record.score >= req.score_threshold:
                stop = StopReason.THRESHOLD_REACHED
                break
        assert best is not None  # max_rounds >= 1, so round 1 always sets it
        yield ReflectionResult(best.draft, best.score, len(history), stop, tuple(history), model, meter)


async def _check_fits(client: ModelClient, req: ReflectionRequest, critic_room: Room) -> str:
    """Before any model call: the caller's text must fit every prompt it goes into. Returns the
    writer's model name."""
    fields = req.caller_fields(*_CALLER_TEXT)
    fit(critic_room, prompts.critique_messages(req.task, req.criteria, req.initial_draft), fields)
    draft = req.initial_draft
    budget = prompts.revision_budget(draft) if draft.strip() else prompts.DRAFT_TOKENS
    writer = await room(client, req.model, step_sampling(req.sampling, budget, free_text=True))
    fit(writer, prompts.revision_messages(req.task, req.criteria, draft, 0, "") if draft.strip()
        else prompts.draft_messages(req.task, req.criteria), fields)
    return writer.model


async def _write(client: ModelClient, req: ReflectionRequest,
                 best: RoundRecord | None) -> AsyncIterator[str | Completion]:
    """The first draft, or a revision of the best one: deltas, then its cleaned Completion."""
    budget = prompts.DRAFT_TOKENS if best is None else prompts.revision_budget(best.draft)
    writer = await room(client, req.model, step_sampling(req.sampling, budget, free_text=True))
    if best is None:
        messages = fit(writer, prompts.draft_messages(req.task, req.criteria), req.caller_fields(*_CALLER_TEXT))
    else:
        messages = _fit_draft(writer, req, best.draft, lambda d: prompts.revision_messages(
            req.task, req.criteria, d, best.score, best.feedback))
    async for item in stream_text(client, req.model, messages, writer.sampling_for(messages),
                                  attempts=req.json_attempts):
        yield item


def _fit_draft(room_: Room, req: ReflectionRequest, draft: str,
               render: Callable[[str], list[ChatMessage]]) -> list[ChatMessage]:
    """A generated draft may be clipped to fit; the caller's `initial_draft` may not."""
    fields = req.caller_fields(*_CALLER_TEXT)
    return fit(room_, render(draft), fields) if draft == req.initial_draft else fit_text(room_, render, draft, fields)
