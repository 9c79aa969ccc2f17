"""PlanExecuteService: plan a DAG of steps, run it, replan on failure; optionally approve the plan."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Required, TypedDict, Unpack

from llmmesh_client._proto.llmmesh.planexecute.v1 import planexecute_service_pb2 as pb
from llmmesh_client.blocking import Facade, blocking, wrapping
from llmmesh_client.methods import PLANEXECUTE
from llmmesh_client.services.pattern import Options, PatternService
from llmmesh_client.sessions import AsyncPlanRun, PlanRun


class RunFields(TypedDict, total=False):
    goal: Required[str]
    model: str
    tools: Sequence[str]
    max_steps: int
    max_replans: int
    # run_stream only: the plan is streamed and waits for approve() / edit() / reject().
    require_approval: bool
    options: Options
    # False: the run is not kept in the run store (it still gets a run_id).
    store: bool


class AsyncPlanExecute(PatternService):
    def run(self, *, timeout: float | None = None, request_id: str | None = None,
            **fields: Unpack[RunFields]) -> Awaitable[pb.RunResponse]:
        return self._unary(PLANEXECUTE["Run"], pb.RunRequest, fields, timeout, request_id)

    def run_stream(self, *, timeout: float | None = None, request_id: str | None = None,
                   **fields: Unpack[RunFields]) -> AsyncPlanRun:
        """Events: `plan` (`awaiting_approval` with require_approval), `step_started`, `step_result`,
        `answer` deltas, then `result`."""
        return self._stream(PLANEXECUTE["RunStream"], "run", pb.RunRequest, fields, timeout, request_id,
                            AsyncPlanRun)


class PlanExecute(Facade[AsyncPlanExecute]):
    run = blocking(AsyncPlanExecute.run)
    run_stream = wrapping(AsyncPlanExecute.run_stream, PlanRun)
