"""The runs table.

Revision ID: 0001
Revises:
Create Date: 2026-05-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "llmmesh_runs",
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("pattern", sa.String(32), nullable=False),
        sa.Column("method", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("principal", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Float, nullable=False),
        sa.Column("models", sa.Text, nullable=False),
        sa.Column("backends", sa.Text, nullable=False),
        sa.Column("prompt_tokens", sa.Integer, nullable=False),
        sa.Column("output_tokens", sa.Integer, nullable=False),
        sa.Column("model_calls", sa.Integer, nullable=False),
        sa.Column("request", sa.Text, nullable=False),
        sa.Column("events", sa.Text, nullable=False),
        sa.Column("events_dropped", sa.Integer, nullable=False),
        sa.Column("result", sa.Text, nullable=True),
        sa.Column("error_code", sa.Integer, nullable=False),
        sa.Column("error_message", sa.Text, nullable=False),
    )
    op.create_index("ix_llmmesh_runs_created", "llmmesh_runs", ["created_at", "run_id"])
    op.create_index("ix_llmmesh_runs_principal_created", "llmmesh_runs", ["principal", "created_at"])
    op.create_index("ix_llmmesh_runs_pattern_created", "llmmesh_runs", ["pattern", "created_at"])


def downgrade() -> None:
    op.drop_table("llmmesh_runs")
