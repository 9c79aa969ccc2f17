"""Per-key request rates and token budgets, as token buckets in shared state.

- **Request rate**: `requests_per_second` refills a bucket of `burst` requests; each RPC (unary
  or stream) takes one when it is admitted, in the auth interceptor. Calls a service identity
  makes on a caller's behalf are part of a request already admitted, and are not counted again.
- **Token budgets**: `tokens_per_minute` / `tokens_per_day` are buckets of that many tokens,
  refilled continuously over the period. The inference service — the one place that knows token
  counts — admits a generation while each of the caller's buckets holds a token, and charges prompt +
  output tokens when it ends (also when it is cancelled or fails midway: the tokens streamed so
  far). A generation already running is never cut off, so a key can overshoot its budget by its
  in-flight generations; the debt delays its next admission accordingly.

Rejections are RESOURCE_EXHAUSTED (HTTP 429 over REST) with `google.rpc.RetryInfo` saying when
the bucket will allow the next request, and `google.rpc.QuotaFailure` naming the key and quota.

**Where the buckets live** is the shared state's business (llmmesh.framework.shared_state): in this
process by default, so with N replicas of a service a key gets up to N times its rate; in Redis
with LLMMESH_REDIS_URL, where every replica takes from the same bucket, atomically, and a key gets
its rate once. Buckets exist only for keys that have limits.
"""

from __future__ import annotations

import math

from google.protobuf import any_pb2
from google.rpc import error_details_pb2
from prometheus_client import CollectorRegistry, Counter

from llmmesh.framework.errors import Overloaded
from llmmesh.framework.principal import Principal
from llmmesh.framework.shared_state import LocalState, SharedState

_TOKEN_PERIODS = (("tokens_per_minute", 60.0), ("tokens_per_day", 86400.0))


class QuotaExceeded(Overloaded):
    """RESOURCE_EXHAUSTED with RetryInfo (from Overloaded) and a QuotaFailure naming the quota."""

    def __init__(self, message: str, retry_after_s: float, subject: str, quota: str, limit: float) -> None:
        super().__init__(message, retry_after_s)
        self.subject, self.quota, self.limit = subject, quota, limit

    def details(self) -> list[any_pb2.Any]:
        failure = error_details_pb2.QuotaFailure(violations=[error_details_pb2.QuotaFailure.Violation(
            subject=self.subject, description=self.quota, quota_id=self.quota, quota_value=math.ceil(self.limit))])
        packed = any_pb2.Any()
        packed.Pack(failure)
        return [*super().details(), packed]


class Quotas:
    """Buckets per key name, shared by every service hosted in this process (and, over Redis, by
    every replica)."""

    def __init__(self, state: SharedState | None = None, registry: CollectorRegistry | None = None) -> None:
        self._state = state if state is not None else LocalState()
        self._rejected = Counter("llmmesh_quota_rejections_total", "Requests refused by a per-key quota",
                                 ["key", "quota"], registry=registry) if registry is not None else None

    def _reject(self, principal: Principal, quota: str, limit: float, wait_s: float, what: str) -> QuotaExceeded:
        if self._rejected is not None:
            self._rejected.labels(principal.name, quota).inc()
        retry = max(0.001, wait_s)
        return QuotaExceeded(f"key {principal.name!r} exceeded its {what}; retry in {math.ceil(retry)}s",
                             retry, f"key:{principal.name}", quota, limit)

    async def admit_request(self, principal: Principal | None) -> None:
        """Take one request from the key's rate bucket, or raise QuotaExceeded."""
        if principal is None or principal.service or principal.delegated:
            return
        rate = principal.limits.requests_per_second
        if rate is None:
            return
        burst = principal.limits.burst or max(1, math.ceil(rate))
        result = await self._state.bucket(f"rate:{principal.name}", burst, rate, take=1.0, need=1.0)
        if not result.taken:
            raise self._reject(principal, "requests_per_second", rate, result.wait_for(1.0, rate),
                               f"request rate ({rate:g}/s, burst {burst})")

    def _token_budgets(self, principal: Principal) -> list[tuple[str, int, float]]:
        """(quota, size, refill per second) of each token budget the key has."""
        limits = principal.limits
        sizes = {"tokens_per_minute": limits.tokens_per_minute, "tokens_per_day": limits.tokens_per_day}
        return [(quota, size, size / period) for quota, period in _TOKEN_PERIODS
                if (size := sizes[quota]) is not None]

    async def admit_tokens(self, principal: Principal | None) -> None:
        """Raise QuotaExceeded while any of the key's token budgets has less than one token left."""
        if principal is None or principal.service:
            return
        empty = []
        for quota, size, rate in self._token_budgets(principal):
            result = await self._state.bucket(f"tokens:{principal.name}:{quota}", size, rate, take=0.0, need=1.0)
            if not result.taken:
                empty.append((result.wait_for(1.0, rate), quota, size))
        if empty:
            # The budget that frees up last decides when to come back.
            wait, quota, size = max(empty)
            raise self._reject(principal, quota, size, wait, f"token budget ({quota} {size:g})")

    async def charge_tokens(self, principal: Principal | None, tokens: int) -> None:
        """Take `tokens` from every token budget of the key; a bucket may go below zero (debt)."""
        if principal is None or principal.service or tokens <= 0:
            return
        for quota, size, rate in self._token_budgets(principal):
            await self._state.bucket(f"tokens:{principal.name}:{quota}", size, rate, take=float(tokens))

    async def remaining_tokens(self, principal: Principal) -> dict[str, float]:
        """Current level of each token budget (for tests and diagnostics)."""
        return {quota: (await self._state.bucket(f"tokens:{principal.name}:{quota}", size, rate, take=0.0)).level
                for quota, size, rate in self._token_budgets(principal)}
