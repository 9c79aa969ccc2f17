"""API keys: stored hashed (SHA-256), each with the services it may call.

Key file (JSON): {"keys": [{"name": "ci", "sha256": "<hex digest>", "scopes": ["judge", "jury"]}]}
A scope is a topology service name, or "*" for all. Clients send `authorization: Bearer <key>`
or `x-api-key: <key>`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from llmmesh.framework.errors import PermissionDenied, Unauthenticated


@dataclass(frozen=True)
class Principal:
    name: str
    scopes: frozenset[str]


class Authenticator(Protocol):
    def authenticate(self, service: str, metadata: Mapping[str, str]) -> Principal | None:
        """Return who is calling, or raise Unauthenticated / PermissionDenied."""
        ...


class AllowAll:
    """No key file configured: every caller is anonymous and allowed."""

    def authenticate(self, service: str, metadata: Mapping[str, str]) -> Principal | None:
        return None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def presented_key(metadata: Mapping[str, str]) -> str:
    bearer = metadata.get("authorization", "")
    if bearer.lower().startswith("bearer "):
        return bearer[7:].strip()
    return metadata.get("x-api-key", "").strip()


class ApiKeyAuthenticator:
    def __init__(self, keys: Mapping[str, Principal], service_names: Mapping[str, str]) -> None:
        # sha256 hex → principal; full gRPC service name → topology name (the scope unit).
        self._keys = dict(keys)
        self._service_names = dict(service_names)

    @classmethod
    def from_file(cls, path: str, service_names: Mapping[str, str]) -> ApiKeyAuthenticator:
        doc = json.loads(Path(path).read_text())
        keys = {
            entry["sha256"].lower(): Principal(entry["name"], frozenset(entry.get("scopes", [])))
            for entry in doc["keys"]
        }
        return cls(keys, service_names)

    def authenticate(self, service: str, metadata: Mapping[str, str]) -> Principal:
        key = presented_key(metadata)
        if not key:
            raise Unauthenticated("missing API key: send 'authorization: Bearer <key>' or 'x-api-key'")
        digest = hash_key(key)
        principal = next((p for h, p in self._keys.items() if hmac.compare_digest(h, digest)), None)
        if principal is None:
            raise Unauthenticated("invalid API key")
        scope = self._service_names.get(service, service)
        if "*" not in principal.scopes and scope not in principal.scopes:
            raise PermissionDenied(f"key {principal.name!r} may not call {scope}")
        return principal
