"""Connection settings: target, TLS, API key, deadlines, and the channel's retry service config."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import grpc

from llmmesh_client import methods
from llmmesh_client.methods import Kind

DEFAULT_TARGET = "localhost:8080"
USER_AGENT = "llmmesh-python/0.1"


@dataclass(frozen=True)
class Deadlines:
    """Default deadline, in seconds, for each kind of call. A call's `timeout=` overrides it."""

    listing: float = 10.0
    embed: float = 30.0
    completion: float = 120.0
    generation: float = 300.0
    pattern: float = 600.0
    # A chat stream lives as long as the conversation; this bounds the whole session.
    session: float = 3600.0

    @classmethod
    def uniform(cls, seconds: float) -> Deadlines:
        return cls(**{f.name: seconds for f in dataclasses.fields(cls)})

    def for_kind(self, kind: Kind) -> float:
        return float(getattr(self, kind.value))


@dataclass(frozen=True)
class RetryPolicy:
    """gRPC's own retries (service config `retryPolicy`): only UNAVAILABLE, only idempotent methods."""

    max_attempts: int = 4  # gRPC caps this at 5
    initial_backoff_s: float = 0.1
    max_backoff_s: float = 2.0
    backoff_multiplier: float = 2.0


@dataclass(frozen=True)
class Tls:
    """Transport security. Certificates are PEM bytes; None uses the system roots / no client cert."""

    root_certificates: bytes | None = None
    certificate_chain: bytes | None = None  # with private_key: mutual TLS
    private_key: bytes | None = None
    # Expected server name when it differs from the target host (e.g. connecting by IP).
    server_name: str = ""

    def credentials(self) -> grpc.ChannelCredentials:
        if (self.certificate_chain is None) != (self.private_key is None):
            raise ValueError("mutual TLS needs both a certificate chain and a private key")
        return grpc.ssl_channel_credentials(self.root_certificates, self.private_key, self.certificate_chain)


class ClientOptions(TypedDict, total=False):
    """Keyword options shared by `LlmMesh` and `AsyncLlmMesh`."""

    api_key: str | None
    # True for TLS with system roots, or a Tls with custom roots / client certificate.
    tls: bool | Tls
    # Overrides every default deadline (seconds); `deadlines` sets them one kind at a time.
    timeout: float | None
    deadlines: Deadlines
    retry: RetryPolicy
    # Extra grpc channel options, appended after the SDK's own.
    channel_options: Sequence[tuple[str, Any]]


@dataclass(frozen=True)
class ClientConfig:
    target: str = DEFAULT_TARGET
    api_key: str | None = None
    tls: Tls | None = None
    deadlines: Deadlines = field(default_factory=Deadlines)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    channel_options: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def build(cls, target: str, options: ClientOptions) -> ClientConfig:
        unknown = set(options) - set(ClientOptions.__annotations__)
        if unknown:
            raise TypeError(f"unknown client option(s): {', '.join(sorted(unknown))}")
        tls = options.get("tls", False)
        deadlines = options.get("deadlines", Deadlines())
        if options.get("timeout") is not None:
            deadlines = Deadlines.uniform(float(options["timeout"]))  # type: ignore[arg-type]
        return cls(target=target, api_key=options.get("api_key") or None,
                   tls=Tls() if tls is True else (tls or None), deadlines=deadlines,
                   retry=options.get("retry", RetryPolicy()),
                   channel_options=tuple(options.get("channel_options", ())))


def read_pem(path: str | Path | None) -> bytes | None:
    return None if path is None else Path(path).read_bytes()


def _seconds(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".") + "s"


def service_config(retry: RetryPolicy) -> dict[str, Any]:
    """The channel's service config: a retry policy for the idempotent methods and nothing else."""
    names = [{"service": m.service, "method": m.name} for m in methods.idempotent()]
    return {
        "methodConfig": [{
            "name": names,
            "retryPolicy": {
                "maxAttempts": retry.max_attempts,
                "initialBackoff": _seconds(retry.initial_backoff_s),
                "maxBackoff": _seconds(retry.max_backoff_s),
                "backoffMultiplier": retry.backoff_multiplier,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }]
    }


def channel_options(config: ClientConfig) -> list[tuple[str, Any]]:
    options: list[tuple[str, Any]] = [
        ("grpc.enable_retries", 1),
        ("grpc.service_config", json.dumps(service_config(config.retry))),
        ("grpc.primary_user_agent", USER_AGENT),
    ]
    if config.tls is not None and config.tls.server_name:
        options.append(("grpc.ssl_target_name_override", config.tls.server_name))
    return options + list(config.channel_options)


def open_channel(config: ClientConfig) -> grpc.aio.Channel:
    """A grpc.aio channel; call it on the event loop that will use the channel."""
    options = channel_options(config)
    if config.tls is None:
        return grpc.aio.insecure_channel(config.target, options=options)
    return grpc.aio.secure_channel(config.target, config.tls.credentials(), options=options)
