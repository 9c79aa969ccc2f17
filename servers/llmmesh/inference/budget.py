"""Token budgets, enforced where the token counts are: around every generation and embedding.

The caller is `request_context.principal` — the key that called, or the caller a pattern service
named when it called on that caller's behalf — so a pattern run's model calls are charged to the
client that started it. Admission needs a token left in every budget of the key; the charge is
prompt + output tokens from the final stats, or, for a generation cut short (cancelled, failed),
the prompt's count is unknown and the tokens streamed so far are charged. See
llmmesh.framework.quotas for the buckets and why they are per replica.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from llmmesh.common.model_call import Finished, GenerationEvent, TextDelta
from llmmesh.framework import request_context
from llmmesh.framework.quotas import Quotas


class TokenBudget:
    def __init__(self, quotas: Quotas | None) -> None:
        self._quotas = quotas

    def admit(self) -> None:
        if self._quotas is not None:
            self._quotas.admit_tokens(request_context.principal.get())

    def charge(self, tokens: int) -> None:
        if self._quotas is not None:
            self._quotas.charge_tokens(request_context.principal.get(), tokens)

    async def metered(self, events: AsyncIterator[GenerationEvent]) -> AsyncIterator[GenerationEvent]:
        """`events` after admission, charged when they end however they end."""
        self.admit()
        streamed = 0
        charged = False
        try:
            async for event in events:
                if isinstance(event, TextDelta):
                    streamed += 1
                elif isinstance(event, Finished):
                    self.charge(event.stats.prompt_tokens + event.stats.output_tokens)
                    charged = True
                yield event
        finally:
            if not charged:
                self.charge(streamed)
