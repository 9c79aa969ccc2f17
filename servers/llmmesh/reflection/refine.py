"""The Self-Refine loop: draft, critique, revise, until good enough, out of rounds, or no better.

Round 1 scores the first draft (generated, or the caller's `initial_draft`). Every later round
revises the best draft so far with its feedback and scores the revision. A revision that scores
no higher than the best draft ends the run (NO_IMPROVEMENT) and the earlier, better draft is the
result; checks run in the order threshold, no improvement, rounds exhausted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from llmmesh.patterns.model_client import Completion, ModelClient, metered
from llmmesh.patterns.structured import complete_json
from llmmesh.reflection import prompts
from llmmesh.reflection.events import (
    CritiqueReady,
    DraftDelta,
    DraftReady,
    ReflectionEvent,
    ReflectionResult,
    RoundRecord,
)
from llmmesh.reflection.request import ReflectionRequest, StopReason


def improve(client: ModelClient, req: ReflectionRequest) -> AsyncIterator[ReflectionEvent]:
    """Every event of the run; the last one is the ReflectionResult."""
    return _improve(client, req)


async def improve_result(client: ModelClient, req: ReflectionRequest) -> ReflectionResult:
    async for event in improve(client, req):
        if isinstance(event, ReflectionResult):
            return event
    raise AssertionError("unreachable: a reflection run ends with its result or raises")


async def _improve(client: ModelClient, req: ReflectionRequest) -> AsyncIterator[ReflectionEvent]:
    with metered() as meter:
        history: list[RoundRecord] = []
        best: RoundRecord | None = None
        model = req.model
        stop = StopReason.MAX_ROUNDS
        for round_ in range(1, req.max_rounds + 1):
            if best is None and req.initial_draft.strip():
                draft = req.initial_draft
            else:
                messages = (prompts.draft_messages(req.task) if best is None else
                            prompts.revision_messages(req.task, best.draft, best.score, best.feedback))
                draft = ""
                async for item in client.stream(req.model, messages, sampling=req.sampling):
                    if isinstance(item, Completion):
                        draft, model = item.text, item.model
                    else:
                        yield DraftDelta(round_, item)
            yield DraftReady(round_, draft)

            critique = await complete_json(client, req.critic_model or req.model,
                                           prompts.critique_messages(req.task, req.criteria, draft),
                                           prompts.CRITIQUE_SCHEMA, sampling=req.sampling,
                                           attempts=req.json_attempts)
            record = RoundRecord(round_, draft, float(critique.value["score"]), critique.value["feedback"])
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

