"""Per-key request rates and token budgets, as token buckets.

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

**The state lives in this process.** Each replica of a service keeps its own buckets: with N
replicas behind Envoy a key gets up to N times its rate. A mesh-wide limit would need a shared
store (Envoy's global rate limit service, Redis); that is not built here. Buckets exist only for
keys that have limits, so memory is bounded by the key file.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf import any_pb2
from google.rpc import error_details_pb2
from prometheus_client import CollectorRegistry, Counter

from llmmesh.framework.errors import Overloaded
from llmmesh.framework.principal import Principal

Clock = Callable[[], float]


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


@dataclass
class TokenBucket:
    capacity: float
    rate: float  # refill per second
    level: float
    updated: float

    @classmethod
    def full(cls, capacity: float, rate: float, now: float) -> TokenBucket:
        return cls(capacity, rate, capacity, now)

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + max(0.0, now - self.updated) * self.rate)
        self.updated = now

    def wait_for(self, amount: float) -> float:
        """Seconds until the level reaches `amount` (0 if it already has)."""
        return max(0.0, (amount - self.level) / self.rate)


class Quotas:
    """Buckets per key name, shared by every service hosted in this process."""

    def __init__(self, clock: Clock = time.monotonic, registry: CollectorRegistry | None = None) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._requests: dict[str, TokenBucket] = {}
        self._tokens: dict[tuple[str, str], TokenBucket] = {}
        self._rejected = Counter("llmmesh_quota_rejections_total", "Requests refused by a per-key quota",
                                 ["key", "quota"], registry=registry) if registry is not None else None

    def _reject(self, principal: Principal, quota: str, limit: float, wait_s: float, what: str) -> QuotaExceeded:
        if self._rejected is not None:
            self._rejected.labels(principal.name, quota).inc()
        retry = max(0.001, wait_s)
        return QuotaExceeded(f"key {principal.name!r} exceeded its {what}; retry in {math.ceil(retry)}s",
                             retry, f"key:{principal.name}", quota, limit)

    def admit_request(self, principal: Principal | None) -> None:
        """Take one request from the key's rate bucket, or raise QuotaExceeded."""
        if principal is None or principal.service or principal.delegated:
            return
        rate = principal.limits.requests_per_second
        if rate is None:
            return
        burst = principal.limits.burst or max(1, math.ceil(rate))
        now = self._clock()
        with self._lock:
            bucket = self._requests.get(principal.name)
            if bucket is None or bucket.capacity != burst or bucket.rate != rate:
                bucket = self._requests[principal.name] = TokenBucket.full(burst, rate, now)
            bucket.refill(now)
            if bucket.level >= 1.0:
                bucket.level -= 1.0
                return
            wait = bucket.wait_for(1.0)
        raise self._reject(principal, "requests_per_second", rate, wait,
                           f"request rate ({rate:g}/s, burst {burst})")

    def _token_buckets(self, principal: Principal, now: float) -> list[tuple[str, TokenBucket]]:
        out = []
        for quota, size, period in (("tokens_per_minute", principal.limits.tokens_per_minute, 60.0),
                                    ("tokens_per_day", principal.limits.tokens_per_day, 86400.0)):
            if size is None:
                continue
            key = (principal.name, quota)
            bucket = self._tokens.get(key)
            if bucket is None or bucket.capacity != size:
                bucket = self._tokens[key] = TokenBucket.full(size, size / period, now)
            bucket.refill(now)
            out.append((quota, bucket))
        return out

    def admit_tokens(self, principal: Principal | None) -> None:
        """Raise QuotaExceeded while any of the key's token budgets has less than one token left."""
        if principal is None or principal.service:
            return
        now = self._clock()
        with self._lock:
            empty = [(quota, bucket) for quota, bucket in self._token_buckets(principal, now) if bucket.level < 1.0]
            if not empty:
                return
            # The budget that frees up last decides when to come back.
            quota, bucket = max(empty, key=lambda qb: qb[1].wait_for(1.0))
            wait = bucket.wait_for(1.0)
        raise self._reject(principal, quota, bucket.capacity, wait, f"token budget ({quota} {bucket.capacity:g})")

    def charge_tokens(self, principal: Principal | None, tokens: int) -> None:
        """Take `tokens` from every token budget of the key; a bucket may go below zero (debt)."""
        if principal is None or principal.service or tokens <= 0:
            return
        now = self._clock()
        with self._lock:
            for _, bucket in self._token_buckets(principal, now):
                bucket.level -= tokens

    def remaining_tokens(self, principal: Principal) -> dict[str, float]:
        """Current level of each token budget (for tests and diagnostics)."""
        now = self._clock()
        with self._lock:
            return {quota: bucket.level for quota, bucket in self._token_buckets(principal, now)}
