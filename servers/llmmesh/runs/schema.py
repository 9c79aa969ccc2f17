"""The run store's table, for SQLAlchemy Core queries. The migrations (migrations/versions/) create
and change it; this description must match their head (tests/runs checks it)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

runs = sa.Table(
    "llmmesh_runs",
    metadata,
    sa.Column("run_id", sa.String(32), primary_key=True),
    sa.Column("pattern", sa.String(32), nullable=False),
    sa.Column("method", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("principal", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("duration_ms", sa.Float, nullable=False),
    # JSON arrays of names, as text: `LIKE '%"name"%'` finds a model on every database.
    sa.Column("models", sa.Text, nullable=False),
    sa.Column("backends", sa.Text, nullable=False),
    sa.Column("prompt_tokens", sa.Integer, nullable=False),
    sa.Column("output_tokens", sa.Integer, nullable=False),
    sa.Column("model_calls", sa.Integer, nullable=False),
    # JSON documents as text.
    sa.Column("request", sa.Text, nullable=False),
    sa.Column("events", sa.Text, nullable=False),
    sa.Column("events_dropped", sa.Integer, nullable=False),
    sa.Column("result", sa.Text, nullable=True),
    sa.Column("error_code", sa.Integer, nullable=False),
    sa.Column("error_message", sa.Text, nullable=False),
    # Listing is newest first, by key or by pattern; pruning is by age.
    sa.Index("ix_llmmesh_runs_created", "created_at", "run_id"),
    sa.Index("ix_llmmesh_runs_principal_created", "principal", "created_at"),
    sa.Index("ix_llmmesh_runs_pattern_created", "pattern", "created_at"),
)
