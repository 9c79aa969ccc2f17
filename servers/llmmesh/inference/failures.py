"""How a backend attempt can fail, as the engine needs to know it: retry elsewhere or not."""

from __future__ import annotations


class BackendFailure(Exception):
    """The backend could not complete the attempt; another backend may (failover)."""

    def __init__(self, backend: str, reason: str, *, status: int = 0) -> None:
        super().__init__(f"{backend}: {reason}")
        self.backend = backend
        self.reason = reason
        self.status = status


class ModelMissing(BackendFailure):
    """The backend does not have the model (HTTP 404): its inventory is stale."""


class BackendRejected(Exception):
    """The backend refused the request itself (HTTP 400/422): retrying elsewhere will not help."""

    def __init__(self, backend: str, message: str) -> None:
        super().__init__(message)
        self.backend = backend
        self.message = message


class Unsupported(Exception):
    """The backend does not implement the endpoint (HTTP 501), e.g. embeddings on a chat server."""

    def __init__(self, backend: str, message: str) -> None:
        super().__init__(f"{backend}: {message}")
        self.backend = backend
        self.message = message
