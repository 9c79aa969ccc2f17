"""Token budgets around a generation: admission while the caller's bucket holds a token, and a
charge when the generation ends however it ends (prompt + output from the final stats, or the
tokens streamed so far when it is cut short)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing, contextmanager

import pytest
from prometheus_client import CollectorRegistry

from llmmesh.common.model_call import Finished, GenerationEvent, GenerationStats, TextDelta
from llmmesh.framework import request_context
from llmmesh.framework.principal import KeyLimits, Principal
from llmmesh.framework.quotas import QuotaExceeded, Quotas
from llmmesh.framework.shared_state import LocalState
from llmmesh.inference.budget import TokenBudget
from llmmesh.inference.metrics import InferenceMetrics
from tests.support.clock import FakeClock

KEY = Principal("team-a", frozenset({"*"}), KeyLimits(tokens_per_minute=100))
STATS = GenerationStats(model="m", backend="a", done_reason="stop", prompt_tokens=30, output_tokens=3,
                        time_to_first_token_ms=1.0, total_ms=2.0, tokens_per_second=1.0, failed_over=False,
                        attempts=1, backends=("a",))


async def generation(*, finish: bool = True) -> AsyncIterator[GenerationEvent]:
    yield TextDelta("a")
    yield TextDelta(" b c", 2)  # a delta may hold several tokens (continuation joins some)
    if finish:
        yield Finished(STATS)
    else:
        raise RuntimeError("backend gone")


@contextmanager
def calling_as(principal: Principal | None) -> Iterator[None]:
    token = request_context.principal.set(principal)
    try:
        yield
    finally:
        request_context.principal.reset(token)


async def left(quotas: Quotas, principal: Principal = KEY) -> float:
    return (await quotas.remaining_tokens(principal))["tokens_per_minute"]


async def test_a_finished_generation_is_charged_prompt_plus_output_tokens() -> None:
    quotas = Quotas(LocalState(FakeClock()))
    with calling_as(KEY):
        events = [e async for e in TokenBudget(quotas).metered(generation())]
    assert len(events) == 3
    assert await left(quotas) == 100 - 33


async def test_a_failed_or_abandoned_generation_is_charged_the_tokens_it_streamed() -> None:
    quotas = Quotas(LocalState(FakeClock()))
    budget = TokenBudget(quotas)
    with calling_as(KEY):
        with pytest.raises(RuntimeError):
            _ = [e async for e in budget.metered(generation(finish=False))]
        assert await left(quotas) == 100 - 3
        async with aclosing(budget.metered(generation())) as events:
            async for _ in events:
                break  # the caller went away after one token
    assert await left(quotas) == 100 - 4


async def test_an_exhausted_budget_refuses_admission_until_it_refills() -> None:
    clock = FakeClock()
    quotas = Quotas(LocalState(clock))
    budget = TokenBudget(quotas)
    with calling_as(KEY):
        await quotas.charge_tokens(KEY, 100)
        with pytest.raises(QuotaExceeded) as err:
            await budget.admit()
        assert err.value.quota == "tokens_per_minute" and err.value.retry_after_s == pytest.approx(0.6)
        clock.advance(0.6)  # 100 tokens a minute: one token back every 0.6 s
        await budget.admit()


async def test_no_quotas_or_a_service_identity_meters_nothing() -> None:
    service = Principal("judge", frozenset({"*"}), KeyLimits(tokens_per_minute=1), service=True)
    quotas = Quotas(LocalState(FakeClock()))
    with calling_as(service):
        assert [e async for e in TokenBudget(quotas).metered(generation())][-1] == Finished(STATS)
    assert await left(quotas, service) == 1
    with calling_as(KEY):
        assert len([e async for e in TokenBudget(None).metered(generation())]) == 3


async def test_usage_is_counted_per_key_with_or_without_a_budget_and_anonymous_without_auth() -> None:
    registry = CollectorRegistry()
    usage = InferenceMetrics.create(registry).key_tokens
    budget = TokenBudget(None, usage)  # no quotas: usage is still counted
    with calling_as(KEY):
        _ = [e async for e in budget.metered(generation())]
        with pytest.raises(RuntimeError):
            _ = [e async for e in budget.metered(generation(finish=False))]
    with calling_as(None):
        _ = [e async for e in budget.metered(generation())]

    def tokens(key: str, kind: str) -> float | None:
        return registry.get_sample_value("llmmesh_key_tokens_total", {"key": key, "kind": kind})

    assert (tokens("team-a", "prompt"), tokens("team-a", "output")) == (30, 3 + 3)  # + the 3 streamed
    assert (tokens("anonymous", "prompt"), tokens("anonymous", "output")) == (30, 3)
