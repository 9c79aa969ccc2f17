"""One stored run, as plain values: what the store writes and reads back."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class RunStatus(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


def new_run_id() -> str:
    """Time-ordered and unguessable: 12 hex digits of milliseconds, then 80 random bits."""
    return f"{int(time.time() * 1000):012x}{secrets.token_hex(10)}"


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    # The pattern's topology name (judge, jury, …, compare) and the RPC (Evaluate, EvaluateStream).
    pattern: str
    method: str
    status: RunStatus
    # The API key's name; "" when API keys are off.
    principal: str
    created_at: datetime
    duration_ms: float
    models: tuple[str, ...] = ()
    backends: tuple[str, ...] = ()
    prompt_tokens: int = 0
    output_tokens: int = 0
    model_calls: int = 0
    # JSON values: the request, the stream events (bounded), the result (None when it failed).
    request: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    events_dropped: int = 0
    result: dict[str, Any] | None = None
    # A failed or cancelled run's status code (grpc.StatusCode value) and message.
    error_code: int = 0
    error_message: str = ""
