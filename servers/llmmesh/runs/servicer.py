"""gRPC face of the run store: GetRun, ListRuns, DeleteRun.

Who sees what: a key sees (and deletes) the runs it ran; a key with `runs:admin` or `*`, the mesh's
own service identity, and every caller when API keys are off, see every run. Another key's run is
NOT_FOUND, as if it did not exist. Reads first wait briefly for this process's queued writes, so a
run is found right after it ended (in the monolith; across processes, once written).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Self

from google.protobuf import timestamp_pb2

from llmmesh.framework import request_context
from llmmesh.framework.errors import NotFound, PermissionDenied
from llmmesh.framework.keyfile import RUNS_ADMIN_SCOPE
from llmmesh.framework.services import ServiceDeps
from llmmesh.framework.validation import Violations
from llmmesh.runs import convert, paging
from llmmesh.runs.log import RunLog
from llmmesh.runs.record import RunStatus
from llmmesh.runs.store import Cursor, RunFilter, RunStore
from llmmesh.runs.v1 import runs_service_pb2 as pb
from llmmesh.runs.v1 import runs_service_pb2_grpc as pb_grpc

MAX_ID_CHARS = 64
RUN_ID = re.compile(r"[0-9a-f]{1,64}")
MAX_NAME_CHARS = 256
# How long a read waits for this process's queued writes.
FLUSH_S = 1.0
_STATUSES = {v: k for k, v in convert.STATUSES.items()}


def own_runs_only() -> str | None:
    """The key whose runs the caller may see; None when it may see every run."""
    who = request_context.principal.get()
    if who is None or who.service or who.may_call(RUNS_ADMIN_SCOPE):
        return None
    return who.name


class RunsServicer(pb_grpc.RunsServiceServicer):
    def __init__(self, runs: RunLog) -> None:
        self.runs = runs

    @classmethod
    def build(cls, deps: ServiceDeps) -> Self:
        assert deps.runs is not None, "the runs service needs the process's run log"
        return cls(deps.runs)

    async def start(self) -> None:
        await self.runs.start()

    async def _store(self) -> RunStore:
        store = await self.runs.store()
        await self.runs.flush(FLUSH_S)
        return store

    async def GetRun(self, request: pb.GetRunRequest, context: Any) -> pb.GetRunResponse:
        _check_id(request.run_id)
        found = await (await self._store()).get(request.run_id, own_runs_only())
        if found is None:
            raise _not_found(request.run_id)
        return pb.GetRunResponse(run=convert.run(found))

    async def ListRuns(self, request: pb.ListRunsRequest, context: Any) -> pb.ListRunsResponse:
        where, size, after = _listing(request)
        found = await (await self._store()).list(where, size + 1, after)
        out = pb.ListRunsResponse(runs=[convert.run(r) for r in found[:size]])
        if len(found) > size:
            last = found[size - 1]
            out.next_page_token = paging.encode(paging.Cursor(last.created_at, last.run_id), where)
        return out

    async def DeleteRun(self, request: pb.DeleteRunRequest, context: Any) -> pb.DeleteRunResponse:
        _check_id(request.run_id)
        if not await (await self._store()).delete(request.run_id, own_runs_only()):
            raise _not_found(request.run_id)
        return pb.DeleteRunResponse()


def _check_id(run_id: str) -> None:
    v = Violations()
    v.text(run_id, "run_id", required=True, max_chars=MAX_ID_CHARS)
    v.check(not run_id or RUN_ID.fullmatch(run_id) is not None, "run_id", "is not a run id (hex digits)")
    v.raise_if_any()


def _name(value: str, field: str, v: Violations) -> None:
    v.text(value, field, max_chars=MAX_NAME_CHARS)
    # PostgreSQL text cannot hold NUL: refused here rather than failing in the database.
    v.check("\x00" not in value, field, "must not contain NUL characters")


def _time(ts: timestamp_pb2.Timestamp, field: str, v: Violations) -> datetime | None:
    try:
        return ts.ToDatetime(UTC)
    except (ValueError, OverflowError):
        v.add(field, "is not a time between the years 1 and 9999")
        return None


def _not_found(run_id: str) -> NotFound:
    return NotFound(f"no run {run_id!r}", "run", run_id, "not in the run store (never stored, deleted, "
                                                         "pruned, or another key's)")


def _listing(request: pb.ListRunsRequest) -> tuple[RunFilter, int, Cursor | None]:
    """The filter (the caller's own runs unless it may see all), page size and start of a ListRuns."""
    v = Violations()
    for field in ("pattern", "model", "principal"):
        _name(getattr(request, field), field, v)
    status: RunStatus | None = None
    if request.status != pb.RUN_STATUS_UNSPECIFIED:
        status = _STATUSES.get(request.status)
        v.check(status is not None, "status", "is not a RunStatus")
    after = _time(request.created_after, "created_after", v) if request.HasField("created_after") else None
    before = _time(request.created_before, "created_before", v) if request.HasField("created_before") else None
    if after is not None and before is not None:
        v.check(after < before, "created_before", "must be later than created_after")
    v.check(request.page_size >= 0, "page_size", f"must be between 0 (the default {paging.DEFAULT_PAGE_SIZE}) "
                                                 f"and {paging.MAX_PAGE_SIZE}")
    own = own_runs_only()
    where = RunFilter(request.pattern, status, request.model, after, before,
                      own if own is not None else (request.principal or None))
    cursor = None
    if request.page_token:
        try:
            cursor = paging.decode(request.page_token, where)
        except paging.BadPageToken as exc:
            v.add("page_token", str(exc))
    v.raise_if_any()
    if own is not None and request.principal not in ("", own):
        raise PermissionDenied(f"key {own!r} may list only its own runs ({RUNS_ADMIN_SCOPE} lists every key's)")
    return where, min(request.page_size or paging.DEFAULT_PAGE_SIZE, paging.MAX_PAGE_SIZE), cursor


build = RunsServicer.build
