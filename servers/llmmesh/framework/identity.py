"""How a mesh service authenticates its own calls to another (pattern → inference).

With API keys on, every process of the mesh shares one internal service key
(LLMMESH_SERVICE_KEY_FILE). A call carries it as a bearer token plus the name of the caller it is
made for (llmmesh.framework.auth explains why this beats forwarding the caller's key), so the
inference service charges that caller's token budget. With mutual TLS on, the call also presents
this process's certificate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import grpc

from llmmesh.framework import request_context, tls
from llmmesh.settings import ServiceTlsSettings, SettingsError
from llmmesh.topology.description import ON_BEHALF_OF_HEADER


def read_service_key(path: str) -> str:
    """The key in `path` (first line, stripped); a missing or empty file is a settings error."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise SettingsError(f"LLMMESH_SERVICE_KEY_FILE: cannot read {path}: {exc.strerror or exc}") from None
    key = lines[0].strip() if lines else ""
    if len(key) < 16:
        raise SettingsError(f"LLMMESH_SERVICE_KEY_FILE: {path} must hold a key of at least 16 characters")
    return key


@dataclass(frozen=True)
class ServiceIdentity:
    # The internal service key; empty when API keys are off (calls then carry no credentials).
    key: str = ""
    tls: ServiceTlsSettings = field(default_factory=ServiceTlsSettings)

    def metadata(self) -> list[tuple[str, str]]:
        """Credentials for a call made while serving the current RPC, for its caller."""
        if not self.key:
            return []
        out = [("authorization", f"Bearer {self.key}")]
        caller = request_context.principal.get()
        if caller is not None and not caller.service:
            out.append((ON_BEHALF_OF_HEADER, caller.name))
        return out

    def channel(self, target: str, options: list[tuple[str, object]] | None = None) -> grpc.aio.Channel:
        return tls.aio_channel(target, self.tls, options)
