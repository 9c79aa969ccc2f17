"""Shared state: token buckets, counters and cached blobs, in this process or in Redis.

`build_shared_state(settings, cache, registry)` gives the embedded default (`LocalState`) unless
LLMMESH_REDIS_URL is set; then Redis behind the failure policy (`ResilientState`). One instance per process is shared by
its quotas (framework.quotas), the response cache (inference.cache) and the admission queue's
fairness accounts (inference.fair_share). See interface.py for the operations.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from llmmesh.framework.shared_state.interface import BucketResult, SharedState
from llmmesh.framework.shared_state.local import LocalState
from llmmesh.framework.shared_state.redis_state import RedisState, RedisUnreachable
from llmmesh.framework.shared_state.resilient import RedisMetrics, ResilientState
from llmmesh.settings import CacheSettings, SharedStateSettings

__all__ = ["BucketResult", "LocalState", "RedisMetrics", "RedisState", "RedisUnreachable", "ResilientState",
           "SharedState", "build_shared_state"]


def build_shared_state(settings: SharedStateSettings, cache: CacheSettings,
          registry: CollectorRegistry | None = None) -> LocalState | ResilientState:
    local = LocalState(cache=cache)
    if not settings.redis_url:
        return local
    return ResilientState(RedisState(settings.redis_url, settings.timeout_s), local, settings.failure_policy,
                          settings.retry_s, RedisMetrics.create(registry))
