"""Per-RPC values that deeper layers need without threading them through every call."""

from __future__ import annotations

import contextvars
import time

from llmmesh.common.cache_mode import CACHE_HEADER
from llmmesh.common.priority import PRIORITY_HEADER
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


# Headers of the caller that apply to the model calls made on its behalf: its admission class
# (x-llmmesh-priority) and response cache mode (x-llmmesh-cache), as sent. The inference service
# reads them from its own metadata; pattern services pass them on with their model calls.
PASSED_ON_HEADERS = (PRIORITY_HEADER, CACHE_HEADER)
passed_on: contextvars.ContextVar[tuple[tuple[str, str], ...]] = contextvars.ContextVar("llmmesh_passed_on",
                                                                                      default=())
