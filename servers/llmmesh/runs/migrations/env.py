"""Alembic's environment: migrations run on the connection the caller opened (llmmesh.runs.migrate),
async engines included (through `run_sync`), so no URL or driver is configured here."""

from __future__ import annotations

from alembic import context

from llmmesh.runs.migrate import VERSION_TABLE
from llmmesh.runs.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, version_table=VERSION_TABLE,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
