"""Servers whose tools are offered beside the built-ins (gRPC servers, MCP servers).

A server is discovered lazily, on first use (bounded by the tool timeout), and the result is
cached. A server that cannot be discovered offers no tools and is logged as a warning; it is tried
again after RETRY_AFTER_S, so a server that was down at start-up joins once it is up.
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence

from llmmesh.tools.base import Tool

RETRY_AFTER_S = 30.0


class RemoteTools(ABC):
    # What kind of server it is, for the logs ("gRPC", "MCP"), and where they go.
    kind: str
    log: logging.Logger

    def __init__(self, address: str, timeout_s: float) -> None:
        self.address = address
        self.timeout_s = timeout_s
        self._tools: list[Tool] | None = None
        self._failed_at: float | None = None
        self._lock = asyncio.Lock()

    @abstractmethod
    async def discover(self) -> Sequence[Tool]:
        """The server's tools, asked of the server."""

    async def tools(self) -> list[Tool]:
        async with self._lock:
            if self._tools is not None:
                return self._tools
            if self._failed_at is not None and time.monotonic() - self._failed_at < RETRY_AFTER_S:
                return []
            try:
                async with asyncio.timeout(self.timeout_s):
                    found = list(await self.discover())
            except Exception as exc:  # any failure: no tools from this server, the run goes on
                self._failed_at = time.monotonic()
                self.log.warning("%s tool discovery failed for %s: %s", self.kind, self.address,
                                 f"{type(exc).__name__}: {exc}"[:300])
                return []
            self._tools = found
            self.log.info("discovered %d %s tools on %s", len(found), self.kind, self.address)
            return self._tools

    @abstractmethod
    async def close(self) -> None:
        """Release what the server's tools hold open between calls."""
