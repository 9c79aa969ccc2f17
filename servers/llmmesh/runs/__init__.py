"""The run store: every pattern run (request, events, result or error, usage, timings, models and
backends, who ran it), written in the background by the pattern services and read through
RunsService. SQLite under the state directory by default, PostgreSQL with LLMMESH_DATABASE_URL;
the schema is migrated by Alembic (`llmmesh-db upgrade`, or at start)."""
