"""The run store's tests run against both databases it supports: SQLite in a temporary directory and
a throwaway PostgreSQL server (tests.support.postgres)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from llmmesh.runs.database import create_engine, database_url
from llmmesh.runs.migrate import upgrade
from llmmesh.runs.store import RunStore
from llmmesh.settings import RunStoreSettings
from tests.support.postgres import postgres_server, postgres_url  # noqa: F401 (fixtures)


@pytest.fixture(params=["sqlite", "postgres"])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> RunStoreSettings:
    """Run store settings for each database: SQLite under the test's directory, or a fresh PostgreSQL
    database."""
    if request.param == "sqlite":
        return RunStoreSettings(state_dir=str(tmp_path / "state"))
    return RunStoreSettings(database_url=request.getfixturevalue("postgres_url"))


@pytest.fixture
async def store(store_settings: RunStoreSettings) -> AsyncIterator[RunStore]:
    engine = create_engine(database_url(store_settings))
    await upgrade(engine)
    s = RunStore(engine)
    try:
        yield s
    finally:
        await s.close()
