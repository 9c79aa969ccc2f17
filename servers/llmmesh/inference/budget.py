"""Token budgets, enforced where the token counts are: around every generation and embedding.

The caller is `request_context.principal` — the key that called, or the caller a pattern service
named when it called on that caller's behalf — so a pattern run's model calls are charged to the
client that started it. Admission needs a token left in every budget of the key; the charge is
prompt + output tokens from the final stats, or, for a generation cut short (cancelled, failed),
the prompt's count is unknown and the tokens streamed so far are charged. See
llmmesh.framework.quotas for the buckets and where they live. Whatever is charged is also counted
per key (`usage`, llmmesh_key_tokens_total), with or without quotas, so usage is visible before
anyone sets a budget.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from prometheus_client import Counter

from llmmesh.common.model_call import Finished, GenerationEvent, TextDelta
from llmmesh.framework import request_context
from llmmesh.framework.quotas import Quotas

ANONYMOUS = "anonymous"  # the usage label when auth is off (no principal)


class TokenBudget:
    def __init__(self, quotas: Quotas | None, usage: Counter | None = None) -> None:
        self._quotas = quotas
        self._usage = usage  # labels (key, kind)

    async def admit(self) -> None:
        if self._quotas is not None:
            await self._quotas.admit_tokens(request_context.principal.get())

    async def charge(self, prompt_tokens: int, output_tokens: int = 0) -> None:
        principal = request_context.principal.get()
        if self._usage is not None:
            key = principal.name if principal is not None else ANONYMOUS
            self._usage.labels(key, "prompt").inc(prompt_tokens)
            self._usage.labels(key, "output").inc(output_tokens)
        if self._quotas is not None:
            await self._quotas.charge_tokens(principal, prompt_tokens + output_tokens)

    async def metered(self, events: AsyncIterator[GenerationEvent]) -> AsyncIterator[GenerationEvent]:
        """`events` after admission, charged when they end however they end."""
        await self.admit()
        streamed = 0
        charged = False
        try:
            async for event in events:
                if isinstance(event, TextDelta):
                    streamed += event.tokens
                elif isinstance(event, Finished):
                    await self.charge(event.stats.prompt_tokens, event.stats.output_tokens)
                    charged = True
                yield event
        finally:
            if not charged:
                # Shielded: a cancelled caller still pays for what was streamed to it.
                await asyncio.shield(self.charge(0, streamed))
