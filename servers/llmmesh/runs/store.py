"""Reading and writing runs: SQLAlchemy Core over an async engine, the same queries on SQLite and
PostgreSQL. Listing is newest first, paged by keyset (the last run's created_at and id), so a page
costs the same however deep it is and runs written meanwhile never shift it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from llmmesh.runs.record import RunRecord, RunStatus
from llmmesh.runs.schema import runs

_SUMMARY = [c for c in runs.c if c.name != "events"]


@dataclass(frozen=True)
class RunFilter:
    pattern: str = ""
    status: RunStatus | None = None
    model: str = ""
    created_after: datetime | None = None
    created_before: datetime | None = None
    # Only this key's runs; None: everyone's.
    principal: str | None = None


@dataclass(frozen=True)
class Cursor:
    """Where a page ends: the last run listed."""

    created_at: datetime
    run_id: str


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _row(r: RunRecord) -> dict[str, Any]:
    return {
        "run_id": r.run_id, "pattern": r.pattern, "method": r.method, "status": r.status.value,
        "principal": r.principal, "created_at": r.created_at, "duration_ms": r.duration_ms,
        "models": _dumps(list(r.models)), "backends": _dumps(list(r.backends)), "prompt_tokens": r.prompt_tokens,
        "output_tokens": r.output_tokens, "model_calls": r.model_calls, "request": _dumps(r.request),
        "events": _dumps(r.events), "events_dropped": r.events_dropped,
        "result": None if r.result is None else _dumps(r.result), "error_code": r.error_code,
        "error_message": r.error_message,
    }


def _utc(value: datetime) -> datetime:
    # SQLite keeps no zone: every time stored is UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _record(row: sa.Row[Any]) -> RunRecord:
    m = row._mapping
    return RunRecord(
        run_id=m["run_id"], pattern=m["pattern"], method=m["method"], status=RunStatus(m["status"]),
        principal=m["principal"], created_at=_utc(m["created_at"]), duration_ms=m["duration_ms"],
        models=tuple(json.loads(m["models"])), backends=tuple(json.loads(m["backends"])),
        prompt_tokens=m["prompt_tokens"], output_tokens=m["output_tokens"], model_calls=m["model_calls"],
        request=json.loads(m["request"]), events=json.loads(m["events"]) if "events" in m else [],
        events_dropped=m["events_dropped"], result=None if m["result"] is None else json.loads(m["result"]),
        error_code=m["error_code"], error_message=m["error_message"])


def _where(f: RunFilter) -> list[sa.ColumnElement[bool]]:
    c = runs.c
    out: list[sa.ColumnElement[bool]] = []
    if f.pattern:
        out.append(c.pattern == f.pattern)
    if f.status is not None:
        out.append(c.status == f.status.value)
    if f.model:
        out.append(c.models.contains(_dumps(f.model), autoescape=True))
    if f.created_after is not None:
        out.append(c.created_at >= f.created_after)
    if f.created_before is not None:
        out.append(c.created_at < f.created_before)
    if f.principal is not None:
        out.append(c.principal == f.principal)
    return out


def _older_than(cursor: Cursor) -> sa.ColumnElement[bool]:
    c = runs.c
    return sa.or_(c.created_at < cursor.created_at,
                  sa.and_(c.created_at == cursor.created_at, c.run_id < cursor.run_id))


class RunStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def close(self) -> None:
        await self.engine.dispose()

    async def insert(self, records: Sequence[RunRecord]) -> None:
        if records:
            async with self.engine.begin() as conn:
                await conn.execute(runs.insert(), [_row(r) for r in records])

    async def get(self, run_id: str, principal: str | None = None) -> RunRecord | None:
        query = sa.select(runs).where(runs.c.run_id == run_id, *_where(RunFilter(principal=principal)))
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _record(row)

    async def list(self, where: RunFilter, limit: int, after: Cursor | None = None) -> list[RunRecord]:
        """Up to `limit` runs (without their events), newest first, older than `after`."""
        clauses = _where(where) + ([_older_than(after)] if after is not None else [])
        query = (sa.select(*_SUMMARY).where(*clauses)
                 .order_by(runs.c.created_at.desc(), runs.c.run_id.desc()).limit(limit))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_record(r) for r in rows]

    async def delete(self, run_id: str, principal: str | None = None) -> bool:
        query = sa.delete(runs).where(runs.c.run_id == run_id, *_where(RunFilter(principal=principal)))
        async with self.engine.begin() as conn:
            return (await conn.execute(query)).rowcount > 0

    async def prune(self, *, max_age_days: float = 0.0, keep: int = 0, now: datetime | None = None) -> int:
        """Delete runs older than `max_age_days` and beyond the newest `keep` (0: no such limit);
        returns how many went."""
        deleted = 0
        async with self.engine.begin() as conn:
            if max_age_days > 0:
                cutoff = (now or datetime.now(UTC)) - timedelta(days=max_age_days)
                deleted += (await conn.execute(sa.delete(runs).where(runs.c.created_at < cutoff))).rowcount
            if keep > 0:
                newest_dropped = (await conn.execute(
                    sa.select(runs.c.created_at, runs.c.run_id)
                    .order_by(runs.c.created_at.desc(), runs.c.run_id.desc()).offset(keep).limit(1))).first()
                if newest_dropped is not None:
                    edge = Cursor(newest_dropped.created_at, newest_dropped.run_id)
                    older_or_same = sa.or_(_older_than(edge), runs.c.run_id == edge.run_id)
                    deleted += (await conn.execute(sa.delete(runs).where(older_or_same))).rowcount
        return deleted
