"""What a request asks of the response cache: the `cache` field's values, and the `x-llmmesh-cache`
header that sets it on REST, the OpenAI front door and gRPC metadata alike (the field wins)."""

from __future__ import annotations

from enum import Enum

CACHE_HEADER = "x-llmmesh-cache"


class CacheMode(Enum):
    USE = "use"  # replay a cached response if there is one, store the response otherwise
    BYPASS = "bypass"  # neither read nor write
    REFRESH = "refresh"  # call the model even if cached, and store its response

    @classmethod
    def parse(cls, text: str) -> CacheMode | None:
        """`use`, `bypass` or `refresh` (any case); None for anything else."""
        return next((m for m in cls if m.value == text.strip().lower()), None)
