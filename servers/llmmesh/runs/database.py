"""Which database the run store uses, and its engine: SQLite (aiosqlite) under the state directory
unless LLMMESH_DATABASE_URL names one; PostgreSQL through asyncpg."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from llmmesh.settings import RunStoreSettings, SettingsError

SQLITE_FILE = "runs.db"
# The async driver of each database a URL may name.
_DRIVERS = {"postgresql": "postgresql+asyncpg", "postgres": "postgresql+asyncpg", "sqlite": "sqlite+aiosqlite"}


def database_url(settings: RunStoreSettings) -> sa.URL:
    if not settings.database_url:
        path = (Path(settings.state_dir) / SQLITE_FILE).resolve()
        return sa.make_url(f"sqlite+aiosqlite:///{path}")
    try:
        url = sa.make_url(settings.database_url)
    except sa.exc.ArgumentError:
        raise SettingsError("LLMMESH_DATABASE_URL is not a database URL (postgresql://user:pass@host/db)") from None
    driver = _DRIVERS.get(url.get_backend_name())
    if driver is None:
        raise SettingsError(f"LLMMESH_DATABASE_URL: {url.get_backend_name()!r} is not supported; "
                            "use postgresql://… or sqlite:///…")
    return url.set(drivername=driver)


def sqlite_path(url: sa.URL) -> Path | None:
    return Path(url.database) if url.get_backend_name() == "sqlite" and url.database else None


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL: readers never block the writer; several processes (microservices on one host) share the
    # file, waiting for each other's writes instead of failing.
    cursor = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=10000"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def create_engine(url: sa.URL) -> AsyncEngine:
    path = sqlite_path(url)
    if path is None:
        return create_async_engine(url, pool_size=4, max_overflow=4, pool_pre_ping=True, pool_recycle=1800)
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url)
    sa.event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine
