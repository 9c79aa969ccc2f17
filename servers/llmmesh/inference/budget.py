"""Token budgets, enforced where the token counts are: around every generation and embedding.

The caller is `request_context.principal` — the key that called, or the caller a pattern service
named when it called on that caller's behalf — so a pattern run's model calls are charged to the
client that started it. Admission needs a token left in every budget of the key; the charge is
prompt + output tokens from the final stats, or, for a generation cut short (cancelled, failed),
the prompt's count is unknown and the tokens streamed so far are charged. See
llmmesh.framework.quotas for the buckets and where they live.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from llmmesh.common.model_call import Finished, GenerationEvent, TextDelta
from llmmesh.framework import request_context
from llmmesh.framework.quotas import Quotas


class TokenBudget:
    def __init__(self, quotas: Quotas | None) -> None:
        self._quotas = quotas

    async def admit(self) -> None:
        if self._quotas is not None:
            await self._quotas.admit_tokens(request_context.principal.get())

    async def charge(self, tokens: int) -> None:
        if self._quotas is not None:
            await self._quotas.charge_tokens(request_context.principal.get(), tokens)

    async def metered(self, events: AsyncIterator[GenerationEvent]) -> AsyncIterator[GenerationEvent]:
        """`events` after admission, charged when they end however they end."""
        await self.admit()
        streamed = 0
        charged = False
        try:
            async for event in events:
                if isinstance(event, TextDelta):
                    streamed += 1
                elif isinstance(event, Finished):
                    await self.charge(event.stats.prompt_tokens + event.stats.output_tokens)
                    charged = True
                yield event
        finally:
            if not charged:
                # Shielded: a cancelled caller still pays for what was streamed to it.
                await asyncio.shield(self.charge(streamed))
