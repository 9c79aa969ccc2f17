"""Authentication and request-rate admission for every RPC.

- The mesh's own services: the Authenticator decides (key, scope), then the caller's request-rate
  bucket admits the call or answers RESOURCE_EXHAUSTED with RetryInfo (llmmesh.framework.quotas).
  The caller is kept in `request_context.principal` for the rest of the RPC (token budgets,
  internal calls made on its behalf).
- Health and reflection: open on a service's own port, so probes and Envoy's health checks need
  no key. Through the public ingress — which marks every request it forwards with
  INGRESS_HEADER — they need a valid key (any scope): the front door reveals neither the API
  nor the serving state to anonymous callers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from llmmesh.framework import request_context
from llmmesh.framework.auth import Authenticator
from llmmesh.framework.errors import MeshError, to_status
from llmmesh.framework.interceptors.base import CallInfo, ShapeInterceptor, StreamInvoke, UnaryInvoke
from llmmesh.framework.interceptors.errors import abort
from llmmesh.framework.principal import Principal
from llmmesh.framework.quotas import Quotas
from llmmesh.topology.description import HEALTH_SERVICE, INGRESS_HEADER, REFLECTION_SERVICES

# Probes and API discovery work without a key on a service's own port.
OPEN_SERVICES = frozenset((HEALTH_SERVICE, *REFLECTION_SERVICES))


class AuthInterceptor(ShapeInterceptor):
    def __init__(self, authenticator: Authenticator, quotas: Quotas | None = None) -> None:
        self._auth = authenticator
        self._quotas = quotas

    async def _check(self, call: CallInfo) -> Principal | None:
        """The caller, or the RPC is aborted with UNAUTHENTICATED / PERMISSION_DENIED /
        RESOURCE_EXHAUSTED."""
        try:
            if call.service in OPEN_SERVICES:
                if INGRESS_HEADER not in call.metadata:
                    return None
                return self._auth.authenticate(None, call.metadata)
            principal = self._auth.authenticate(call.service, call.metadata)
            if self._quotas is not None:
                await self._quotas.admit_request(principal)
            return principal
        except MeshError as exc:
            await abort(call.context, to_status(exc))
            raise AssertionError("unreachable: abort raises") from exc

    async def unary(self, call: CallInfo, invoke: UnaryInvoke) -> Any:
        token = request_context.principal.set(await self._check(call))
        try:
            return await invoke()
        finally:
            request_context.principal.reset(token)

    async def stream(self, call: CallInfo, invoke: StreamInvoke) -> AsyncIterator[Any]:
        token = request_context.principal.set(await self._check(call))
        try:
            async for item in invoke():
                yield item
        finally:
            try:
                request_context.principal.reset(token)
            except ValueError:  # generator finalised in another context; the RPC's task ends anyway
                pass
