"""Free-text steps (a draft, an agent's turn): a reply a person can use, or a clear error.

The step's sampling comes bounded (`options.step_sampling(..., free_text=True)`: a budget and the
anti-repetition default). What the model wrote still passes the loop guard: a degenerate loop is
cut back to its first occurrence, so "Your Favorite Bakery" said sixty times is said once. A reply
with nothing usable left (empty, a placeholder such as "answer" or "<draft>", punctuation debris)
is not an answer: the step asks again with another seed and temperature, and after its attempts
fails with MalformedModelOutput naming the model.

The streamed deltas are what the model generated; the final Completion's text is the cleaned reply.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence

from llmmesh.common.model_call import ChatMessage, Sampling
from llmmesh.patterns.answer_text import unusable
from llmmesh.patterns.model_client import DEFAULT_MAX_TOKENS, Completion, ModelClient
from llmmesh.patterns.repetition import cut_repetition
from llmmesh.patterns.structured import MalformedModelOutput, attempt_sampling


async def stream_text(client: ModelClient, model: str, messages: Sequence[ChatMessage], sampling: Sampling, *,
                      attempts: int = 2) -> AsyncIterator[str | Completion]:
    """Text deltas, then one Completion with the cleaned, non-empty reply."""
    budget = sampling.max_tokens or DEFAULT_MAX_TOKENS
    answered_by, problem = model, ""
    for attempt in range(1, attempts + 1):
        completion: Completion | None = None
        async for item in client.stream(model, messages, sampling=attempt_sampling(sampling, budget, attempt)):
            if isinstance(item, Completion):
                completion = item
            else:
                yield item
        assert completion is not None
        answered_by = completion.model or answered_by
        text = cut_repetition(completion.text)
        problem = unusable(text, "the reply")
        if not problem:
            yield dataclasses.replace(completion, text=text)
            return
    raise MalformedModelOutput(answered_by, attempts, problem)


async def complete_text(client: ModelClient, model: str, messages: Sequence[ChatMessage], sampling: Sampling, *,
                        attempts: int = 2) -> Completion:
    async for item in stream_text(client, model, messages, sampling, attempts=attempts):
        if isinstance(item, Completion):
            return item
    raise AssertionError("unreachable: stream_text ends with a Completion or raises")
