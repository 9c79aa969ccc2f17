"""gRPC face of plan-and-execute: translates messages, nothing else (logic: llmmesh.planexecute.run)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from llmmesh.framework.bidi import BidiSession
from llmmesh.framework.errors import FailedPrecondition
from llmmesh.framework.services import ServiceDeps
from llmmesh.patterns.model_client import ModelClient
from llmmesh.patterns.servicer_base import PatternServicer
from llmmesh.patterns.streams import run_bidi
from llmmesh.planexecute import convert, run
from llmmesh.planexecute.events import Finished
from llmmesh.planexecute.plan import Plan
from llmmesh.planexecute.run import Decision
from llmmesh.planexecute.v1 import planexecute_service_pb2 as pb
from llmmesh.planexecute.v1 import planexecute_service_pb2_grpc as pb_grpc
from llmmesh.settings import PatternLimits
from llmmesh.tools.registry import ToolRegistry


class PlanExecuteServicer(PatternServicer, pb_grpc.PlanExecuteServiceServicer):
    def __init__(self, client: ModelClient, limits: PatternLimits) -> None:
        super().__init__(client, limits)
        self.registry = ToolRegistry(limits)

    async def close(self) -> None:
        await super().close()
        await self.registry.close()

    async def Run(self, request: pb.RunRequest, context: Any) -> pb.RunResponse:
        spec = await convert.plan_run(request, self.registry, self.limits, streaming=False)
        async with aclosing(run.run(self.client, spec)) as events:
            async for event in events:
                if isinstance(event, Finished):
                    return convert.response(event.result)
        raise AssertionError("unreachable: a plan-execute run ends with Finished or raises")

    async def RunStream(self, request_iterator: AsyncIterator[pb.RunStreamRequest],
                        context: Any) -> AsyncIterator[pb.RunStreamResponse]:
        async for event in run_bidi(request_iterator, "run", self._run):
            yield event

    async def _run(self, start: pb.RunRequest,
                   session: BidiSession[pb.RunStreamRequest]) -> AsyncIterator[pb.RunStreamResponse]:
        spec = await convert.plan_run(start, self.registry, self.limits, streaming=True, prefix="run.")

        async def approve(plan: Plan) -> Decision:
            msg = await session.next()
            if msg is None:
                raise FailedPrecondition("the client closed its side of the stream before deciding on the plan")
            return convert.decision(msg, self.limits)

        async for event in run.run(self.client, spec, approve):
            yield convert.stream_event(event)


def build(deps: ServiceDeps) -> PlanExecuteServicer:
    return PlanExecuteServicer.build(deps)
