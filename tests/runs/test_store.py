"""The run store's queries and migrations, on SQLite and on a real PostgreSQL server alike."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from llmmesh.runs.database import create_engine, database_url
from llmmesh.runs.migrate import VERSION_TABLE, current, upgrade
from llmmesh.runs.record import RunRecord, RunStatus
from llmmesh.runs.schema import metadata
from llmmesh.runs.store import Cursor, RunFilter, RunStore
from llmmesh.settings import RunStoreSettings

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def record(run_id: str, minutes: float = 0, **fields) -> RunRecord:
    base = dict(run_id=run_id, pattern="judge", method="Evaluate", status=RunStatus.SUCCEEDED, principal="ci",
                created_at=T0 + timedelta(minutes=minutes), duration_ms=12.5, models=("m",), backends=("a",))
    return RunRecord(**{**base, **fields})


async def test_the_migrations_build_exactly_the_schema_the_queries_use(store: RunStore) -> None:
    assert await current(store.engine) == "0001"
    async with store.engine.connect() as conn:
        diff = await conn.run_sync(lambda sync: compare_metadata(
            MigrationContext.configure(sync, opts={"version_table": VERSION_TABLE}), metadata))
    assert diff == []


async def test_processes_starting_together_migrate_once(store_settings: RunStoreSettings) -> None:
    engines = [create_engine(database_url(store_settings)) for _ in range(3)]
    try:
        await asyncio.gather(*(upgrade(e) for e in engines))
        assert [await current(e) for e in engines] == ["0001"] * 3
    finally:
        for e in engines:
            await e.dispose()


async def test_a_run_reads_back_as_it_was_written(store: RunStore) -> None:
    written = record("r1", request={"question": "2+2?", "store": True}, prompt_tokens=10, output_tokens=3,
                     model_calls=1, events=[{"reasoning": {"text": "four", "source": "a,b"}}, {"truncated": {}}],
                     events_dropped=4, result={"score": 5, "run_id": "r1", "verdict": "VERDICT_PASS"},
                     models=("m", "m2:latest"), backends=("a", "b"))
    failed = record("r2", 1, status=RunStatus.FAILED, error_code=5, error_message="model 'x' is not served")
    await store.insert([written, failed])
    assert await store.get("r1") == written
    assert await store.get("r2") == failed
    assert (await store.get("r1")).created_at.tzinfo is not None
    assert await store.get("nope") is None


async def test_a_key_reads_and_deletes_only_its_own_runs(store: RunStore) -> None:
    await store.insert([record("mine", principal="alice"), record("theirs", principal="bob")])
    assert await store.get("theirs", principal="alice") is None
    assert not await store.delete("theirs", principal="alice")
    assert await store.get("theirs") is not None
    assert await store.delete("mine", principal="alice")
    assert await store.get("mine") is None
    assert not await store.delete("mine")


async def test_listing_filters(store: RunStore) -> None:
    await store.insert([
        record("a", 0, pattern="judge", models=("m_1",)),
        record("b", 1, pattern="jury", models=("mx1", "other")),
        record("c", 2, pattern="judge", status=RunStatus.FAILED, principal="bob"),
        record("d", 3, pattern="compare", status=RunStatus.CANCELLED, models=("m_1", "mx1")),
    ])

    async def ids(**where) -> list[str]:
        return [r.run_id for r in await store.list(RunFilter(**where), 10)]

    assert await ids() == ["d", "c", "b", "a"]  # newest first
    assert await ids(pattern="judge") == ["c", "a"]
    assert await ids(status=RunStatus.FAILED) == ["c"]
    assert await ids(status=RunStatus.CANCELLED) == ["d"]
    # `_` is a LIKE wildcard: it must match itself only.
    assert await ids(model="m_1") == ["d", "a"]
    assert await ids(model="mx1") == ["d", "b"]
    assert await ids(model="m") == ["c"]  # a whole name, not a prefix of m_1 or mx1
    assert await ids(principal="bob") == ["c"]
    assert await ids(created_after=T0 + timedelta(minutes=1), created_before=T0 + timedelta(minutes=3)) == ["c", "b"]
    listed = await store.list(RunFilter(), 10)
    assert all(r.events == [] for r in listed)  # listings leave the events out


async def test_pages_cover_every_run_once_newest_first(store: RunStore) -> None:
    # Ten runs share one timestamp: the id breaks the tie, so no page repeats or skips one.
    runs = [record(f"r{i:02d}", minutes=0 if i < 10 else i) for i in range(25)]
    await store.insert(runs)
    seen: list[str] = []
    after = None
    while True:
        page = await store.list(RunFilter(), 7, after)
        seen += [r.run_id for r in page]
        if len(page) < 7:
            break
        after = Cursor(page[-1].created_at, page[-1].run_id)
    expected = sorted(runs, key=lambda r: (r.created_at, r.run_id), reverse=True)
    assert seen == [r.run_id for r in expected]


async def test_retention_by_age_and_by_count(store: RunStore) -> None:
    now = T0 + timedelta(days=10)
    await store.insert([record(f"old{i}", minutes=i) for i in range(3)] +  # 10 days old
                       [record(f"new{i}", minutes=60 * 24 * 9 + i) for i in range(5)])  # 1 day old
    assert await store.prune(max_age_days=5, now=now) == 3
    assert await store.prune(keep=2) == 3
    assert [r.run_id for r in await store.list(RunFilter(), 10)] == ["new4", "new3"]
    assert await store.prune(keep=2) == 0
