"""Alembic migrations of the run store (`llmmesh-db upgrade`; applied at start as well)."""
