"""The event loop every llmmesh process runs on: uvloop (libuv, in C) instead of asyncio's pure-
Python loop, whose per-callback and per-socket-read overhead is paid on every relayed token."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` on a uvloop loop."""
    return uvloop.run(main)
