"""Per-RPC values that deeper layers need without threading them through every call."""

from __future__ import annotations

import contextvars
import time

from llmmesh.framework.principal import Principal

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("llmmesh_request_id", default="")
# Absolute time.monotonic() by which the current RPC must finish; None when the caller set none.
deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("llmmesh_deadline", default=None)


def time_remaining() -> float | None:
    """Seconds left before the caller's deadline, for propagating it to downstream calls."""
    end = deadline.get()
    return None if end is None else max(0.0, end - time.monotonic())


# The caller of the current RPC as authenticated (the named caller when a service identity acts on
# its behalf); None when authentication is off. Quotas and internal calls read it.
principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("llmmesh_principal", default=None)
