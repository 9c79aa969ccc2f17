"""API keys: stored hashed (SHA-256), each with the services it may call and its quotas.

The key file format is in llmmesh.framework.keyfile. Clients send `authorization: Bearer <key>`
or `x-api-key: <key>`. A missing or unknown key is UNAUTHENTICATED; a key without the scope of the
called service is PERMISSION_DENIED.

The mesh's own calls (a pattern service calling inference) use a **service identity**: one
internal key shared by the mesh's processes (LLMMESH_SERVICE_KEY_FILE), scope `*`, never in the
key file. Such a call names the caller it acts for in `x-llmmesh-on-behalf-of`; the inference
service then charges that caller's token budget. Only the service identity may name someone else
(a client's own key with that header is refused), and the ingress strips the header besides.
Forwarding the client's key instead would not work: a key scoped to `judge` alone must still let
the judge call inference.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import replace
from typing import Protocol

from llmmesh.framework import keyfile
from llmmesh.framework.errors import PermissionDenied, Unauthenticated
from llmmesh.framework.principal import Principal
from llmmesh.topology.description import ANY_KEY_SERVICES
from llmmesh.topology.description import ON_BEHALF_OF_HEADER as ON_BEHALF_OF

SERVICE_PRINCIPAL = "llmmesh-service"


class Authenticator(Protocol):
    def authenticate(self, service: str | None, metadata: Mapping[str, str]) -> Principal | None:
        """Return who is calling, or raise Unauthenticated / PermissionDenied. `service` is the full
        gRPC service name called, or None when any valid key will do (health, reflection)."""
        ...


class AllowAll:
    """No key file configured: every caller is anonymous and allowed."""

    def authenticate(self, service: str | None, metadata: Mapping[str, str]) -> Principal | None:
        return None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def presented_key(metadata: Mapping[str, str]) -> str:
    bearer = metadata.get("authorization", "")
    if bearer.lower().startswith("bearer "):
        return bearer[7:].strip()
    return metadata.get("x-api-key", "").strip()


class ApiKeyAuthenticator:
    def __init__(self, keys: Mapping[str, Principal], service_names: Mapping[str, str],
                 service_key: str = "") -> None:
        # sha256 hex → principal; full gRPC service name → topology name (the scope unit).
        self._keys = dict(keys)
        self._by_name = {p.name: p for p in self._keys.values()}
        self._service_names = dict(service_names)
        if service_key:
            self._keys[hash_key(service_key)] = Principal(SERVICE_PRINCIPAL, frozenset({"*"}), service=True)

    @classmethod
    def from_file(cls, path: str, service_names: Mapping[str, str], service_key: str = "") -> ApiKeyAuthenticator:
        return cls(keyfile.load(path), service_names, service_key)

    def authenticate(self, service: str | None, metadata: Mapping[str, str]) -> Principal:
        key = presented_key(metadata)
        if not key:
            raise Unauthenticated("missing API key: send 'authorization: Bearer <key>' or 'x-api-key'")
        digest = hash_key(key)
        # Compare against every digest: the time taken does not depend on which one matched.
        principal = None
        for known, who in self._keys.items():
            if hmac.compare_digest(known, digest):
                principal = who
        if principal is None:
            raise Unauthenticated("invalid API key")
        if service is not None:
            scope = self._service_names.get(service, service)
            if scope not in ANY_KEY_SERVICES and not principal.may_call(scope):
                raise PermissionDenied(f"key {principal.name!r} may not call {scope}")
        return self._effective(principal, metadata)

    def _effective(self, principal: Principal, metadata: Mapping[str, str]) -> Principal:
        """The principal quotas apply to: the service identity's named caller, else the key's own."""
        named = metadata.get(ON_BEHALF_OF, "")
        if not named:
            return principal
        if not principal.service:
            raise PermissionDenied(f"key {principal.name!r} may not act on behalf of another key")
        if named == SERVICE_PRINCIPAL:
            return principal
        target = self._by_name.get(named)
        if target is None:
            raise Unauthenticated(f"unknown caller {named[:64]!r} named by a service")
        return replace(target, delegated=True)
