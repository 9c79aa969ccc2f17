"""Authentication hook: every RPC except health and reflection passes the Authenticator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from llmmesh.framework.auth import Authenticator
from llmmesh.framework.errors import MeshError, to_status
from llmmesh.framework.interceptors.base import CallInfo, ShapeInterceptor, StreamInvoke, UnaryInvoke
from llmmesh.framework.interceptors.errors import abort
from llmmesh.topology.description import HEALTH_SERVICE, REFLECTION_SERVICES

# Probes and API discovery must work without a key.
OPEN_SERVICES = frozenset((HEALTH_SERVICE, *REFLECTION_SERVICES))


class AuthInterceptor(ShapeInterceptor):
    def __init__(self, authenticator: Authenticator) -> None:
        self._auth = authenticator

    async def _check(self, call: CallInfo) -> None:
        if call.service in OPEN_SERVICES:
            return
        try:
            self._auth.authenticate(call.service, call.metadata)
        except MeshError as exc:
            await abort(call.context, to_status(exc))

    async def unary(self, call: CallInfo, invoke: UnaryInvoke) -> Any:
        await self._check(call)
        return await invoke()

    async def stream(self, call: CallInfo, invoke: StreamInvoke) -> AsyncIterator[Any]:
        await self._check(call)
        async for item in invoke():
            yield item
