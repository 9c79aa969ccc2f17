"""Free-text steps (a draft, an agent's turn): a reply a person can use, or a clear error.

The step's sampling comes bounded (`options.step_sampling(..., free_text=True)`: a budget and the
anti-repetition default). What the model wrote still passes the loop guard: a degenerate loop is
cut back to its first occurrence, so "Your Favorite Bakery" said sixty times is said once. A reply
with nothing usable left (empty, a placeholder such as "answer" or "<draft>", punctuation debris)
is not an answer: the step asks again with another seed and temperature, and after its attempts
fails with MalformedModelOutput naming the model.

A step may also `advise`: a rule a good reply follows that a heuristic checks (an answer states the
numbers it was given). A reply that breaks it is repaired once, the model shown its reply and the
problem; the repaired reply stands, as a heuristic may be wrong.

The streamed deltas are what the model generated; the final Completion's text is the cleaned reply.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence

from llmmesh.common.model_call import ChatMessage, Sampling
from llmmesh.patterns.answer_text import unusable
from llmmesh.patterns.model_client import DEFAULT_MAX_TOKENS, Completion, ModelClient
from llmmesh.patterns.repetition import cut_repetition
from llmmesh.patterns.structured import Check, MalformedModelOutput, attempt_sampling, repair_messages


async def stream_text(client: ModelClient, model: str, messages: Sequence[ChatMessage], sampling: Sampling, *,
                      attempts: int = 2, advise: Check | None = None) -> AsyncIterator[str | Completion]:
    """Text deltas (of every attempt), then one Completion with the cleaned, usable reply."""
    budget = sampling.max_tokens or DEFAULT_MAX_TOKENS
    answered_by, problem, transcript = model, "", list(messages)
    advised: Completion | None = None  # a usable reply that broke the advice, kept in case no better one comes
    attempt = 0
    while attempt < attempts:
        attempt += 1
        completion: Completion | None = None
        async for item in client.stream(model, transcript, sampling=attempt_sampling(sampling, budget, attempt)):
            if isinstance(item, Completion):
                completion = item
            else:
                yield item
        assert completion is not None
        answered_by = completion.model or answered_by
        reply = dataclasses.replace(completion, text=cut_repetition(completion.text))
        problem = unusable(reply.text, "the reply")
        if problem:
            continue
        if advised is None and advise is not None and (advice := advise(reply.text)):
            advised, attempts = reply, attempts + 1  # one repair, on top of the attempts for unusable replies
            transcript = [*messages, *repair_messages(reply.text, advice, again="Write the reply again, corrected.")]
            continue
        yield reply
        return
    if advised is not None:
        yield advised
        return
    raise MalformedModelOutput(answered_by, attempts, problem)


async def complete_text(client: ModelClient, model: str, messages: Sequence[ChatMessage], sampling: Sampling, *,
                        attempts: int = 2, advise: Check | None = None) -> Completion:
    async for item in stream_text(client, model, messages, sampling, attempts=attempts, advise=advise):
        if isinstance(item, Completion):
            return item
    raise AssertionError("unreachable: stream_text ends with a Completion or raises")
