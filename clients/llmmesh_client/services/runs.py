"""RunsService: the runs the mesh stored (yours; every key's with the `runs:admin` scope)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from datetime import datetime
from typing import Any, TypedDict, Unpack

from llmmesh_client._proto.llmmesh.runs.v1 import runs_service_pb2 as pb
from llmmesh_client.blocking import Facade, blocking, iterating
from llmmesh_client.convert import build
from llmmesh_client.methods import RUNS
from llmmesh_client.transport import Transport


class RunFilters(TypedDict, total=False):
    pattern: str  # judge, jury, tooluse, planexecute, reflection, collaboration, compare
    status: int | str  # "succeeded" | "failed" | "cancelled"
    model: str
    created_after: datetime
    created_before: datetime
    principal: str  # another key's runs: needs runs:admin
    page_size: int
    page_token: str


class AsyncRuns:
    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def list(self, *, timeout: float | None = None, request_id: str | None = None,
             **filters: Unpack[RunFilters]) -> Awaitable[pb.ListRunsResponse]:
        """One page of runs, newest first, without their events; `next_page_token` asks for the next."""
        return self._t.unary(RUNS["ListRuns"], build(pb.ListRunsRequest, filters), timeout=timeout,
                             request_id=request_id)

    def get(self, run_id: str, *, timeout: float | None = None,
            request_id: str | None = None) -> Awaitable[pb.Run]:
        """One run in full: request, events, result or error, usage, models, backends."""
        return _run_of(self._t.unary(RUNS["GetRun"], pb.GetRunRequest(run_id=run_id), timeout=timeout,
                                     request_id=request_id))

    def delete(self, run_id: str, *, timeout: float | None = None,
               request_id: str | None = None) -> Awaitable[pb.DeleteRunResponse]:
        return self._t.unary(RUNS["DeleteRun"], pb.DeleteRunRequest(run_id=run_id), timeout=timeout,
                             request_id=request_id)

    def iterate(self, *, timeout: float | None = None, **filters: Unpack[RunFilters]) -> AsyncIterator[pb.Run]:
        """Every run matching the filters, page after page (`timeout` bounds each page's call)."""
        return self._pages(dict(filters, timeout=timeout))

    async def _pages(self, arguments: dict[str, Any]) -> AsyncIterator[pb.Run]:
        while True:
            page = await self.list(**arguments)
            for run in page.runs:
                yield run
            if not page.next_page_token:
                return
            arguments["page_token"] = page.next_page_token


async def _run_of(call: Awaitable[pb.GetRunResponse]) -> pb.Run:
    return (await call).run


class Runs(Facade[AsyncRuns]):
    list = blocking(AsyncRuns.list)
    get = blocking(AsyncRuns.get)
    delete = blocking(AsyncRuns.delete)
    iterate = iterating(AsyncRuns.iterate)
