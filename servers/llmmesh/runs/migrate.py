"""The run store's schema migrations (Alembic, under migrations/), applied to the configured
database: at start by every process that stores or reads runs, or ahead of time with
`llmmesh-db upgrade`. Concurrent starts are safe: PostgreSQL migrates under an advisory lock,
SQLite under a lock file next to the database.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import os
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from llmmesh.runs.database import create_engine, database_url, sqlite_path
from llmmesh.settings import RunStoreSettings, SettingsError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "llmmesh_runs_schema_version"
# pg_advisory_xact_lock key: "llmmesh runs" as a number, the same in every process.
_PG_LOCK = 0x6C6C6D72756E73


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@asynccontextmanager
async def _file_lock(path: Path) -> AsyncIterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the database's schema to `revision`, one process at a time."""
    path = sqlite_path(engine.url)
    if path is not None:
        async with _file_lock(path.with_name(path.name + ".migrate.lock")):
            await _upgrade(engine, revision)
    else:
        await _upgrade(engine, revision)


async def _upgrade(engine: AsyncEngine, revision: str) -> None:
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
        await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), revision))


async def current(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda sync: MigrationContext.configure(sync, opts={"version_table": VERSION_TABLE}).get_current_revision())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="llmmesh-db", description="The run store's schema (LLMMESH_DATABASE_URL, else SQLite in "
                                       "LLMMESH_STATE_DIR).")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("upgrade", help="apply every migration (the services also do at start)")
    sub.add_parser("current", help="print the schema's revision")
    args = parser.parse_args(argv)
    try:
        url = database_url(RunStoreSettings.from_env(os.environ))
    except SettingsError as exc:
        print(f"llmmesh-db: {exc}", file=sys.stderr)
        return 2

    async def go() -> int:
        engine = create_engine(url)
        try:
            if args.command == "upgrade":
                await upgrade(engine)
            print(await current(engine) or "(empty)")
        finally:
            await engine.dispose()
        return 0

    return asyncio.run(go())


if __name__ == "__main__":
    raise SystemExit(main())
