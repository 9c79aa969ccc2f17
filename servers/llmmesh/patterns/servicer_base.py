"""What every pattern servicer holds: its inference client and the server's run limits."""

from __future__ import annotations

from typing import Self

from llmmesh.framework.services import ServiceDeps
from llmmesh.patterns.model_client import ModelClient
from llmmesh.settings import PatternLimits


class PatternServicer:
    def __init__(self, client: ModelClient, limits: PatternLimits) -> None:
        self.client = client
        self.limits = limits

    @classmethod
    def build(cls, deps: ServiceDeps) -> Self:
        return cls(ModelClient(deps.inference_target, deps.identity), deps.settings.limits)

    async def close(self) -> None:
        await self.client.close()
