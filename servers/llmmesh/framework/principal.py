"""Who is calling: an API key's name, the services it may call, and its quotas.

Kept free of gRPC and of the key file format so that request context, the quota tracker and the
inference service can all name a caller without importing the authenticator.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from llmmesh.common.priority import Priority


@dataclass(frozen=True)
class KeyLimits:
    """Per-key quotas; None means unlimited.

    `requests_per_second` with `burst` is a token bucket over RPCs (burst defaults to the rate,
    rounded up). `tokens_per_minute` / `tokens_per_day` bound prompt + output tokens, each as a
    bucket of that size refilled continuously over its period.
    """

    requests_per_second: float | None = None
    burst: int | None = None
    tokens_per_minute: int | None = None
    tokens_per_day: int | None = None


@dataclass(frozen=True)
class Principal:
    name: str
    scopes: frozenset[str]
    limits: KeyLimits = field(default_factory=KeyLimits)
    # Admission (llmmesh.inference.admission): the key's share of busy backends relative to other
    # keys', and the most urgent class it may ask for (also its default).
    weight: float = 1.0
    max_priority: Priority = Priority.INTERACTIVE
    # The mesh's own service identity: pattern services calling inference. It may name the caller
    # it acts for (x-llmmesh-on-behalf-of); it is never rate limited itself.
    service: bool = False
    # True when this principal was named by a service acting on its behalf, not authenticated by
    # its own key on this hop: quotas on tokens apply, the request rate was admitted upstream.
    delegated: bool = False

    def may_call(self, scope: str) -> bool:
        return "*" in self.scopes or scope in self.scopes
