"""The gateway's side of the mesh's gRPC contracts: a lazily opened channel per target (the
inference service; the pattern services for MCP), and per-request call options (the caller's API
key and request id as metadata, a deadline on every call)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from typing import Any

import grpc
from aiohttp import web

from llmmesh.common.cache_mode import CACHE_HEADER
from llmmesh.common.priority import PRIORITY_HEADER
from llmmesh.framework.local_channel import LocalChannel
from llmmesh.framework.tls import aio_channel
from llmmesh.gateway import errors
from llmmesh.gateway.errors import invalid
from llmmesh.inference.v1 import inference_service_pb2 as pb
from llmmesh.inference.v1 import inference_service_pb2_grpc as pb_grpc
from llmmesh.settings import GatewaySettings, ServiceTlsSettings

# Headers passed through as gRPC metadata: API keys are enforced by the services themselves; the
# admission class (x-llmmesh-priority) is read, and capped by the key, by the inference service, as
# is the response cache mode (x-llmmesh-cache).
FORWARDED_HEADERS = ("authorization", "x-api-key", "x-request-id", PRIORITY_HEADER, CACHE_HEADER)
# Optional per-request deadline in seconds; it can only lower the gateway's own bound.
TIMEOUT_HEADER = "x-llmmesh-timeout-s"
_MAX_MESSAGE = 64 * 1024 * 1024


class Upstream:
    """A lazily opened channel to a gRPC target (it must be created on the serving loop), or the
    services of this very process (`local`: the gateway hosted beside them, llmmesh.gateway.hosted)."""

    def __init__(self, target: str, tls: ServiceTlsSettings | None = None, local: LocalChannel | None = None) -> None:
        self.target = target
        # Mutual TLS toward the mesh's services, when the mesh runs with it.
        self.tls = tls or ServiceTlsSettings()
        self._local = local
        self._channel: grpc.aio.Channel | None = None

    @property
    def channel(self) -> grpc.aio.Channel | LocalChannel:
        if self._local is not None:
            return self._local
        if self._channel is None:
            self._channel = aio_channel(self.target, self.tls, options=[
                ("grpc.max_receive_message_length", _MAX_MESSAGE),
                ("grpc.max_send_message_length", _MAX_MESSAGE),
            ])
        return self._channel

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None


class Inference(Upstream):
    """The inference service: the OpenAI and Ollama front doors' one upstream."""

    def __init__(self, target: str, tls: ServiceTlsSettings | None = None, local: LocalChannel | None = None) -> None:
        super().__init__(target, tls, local)
        self._stub: pb_grpc.InferenceServiceStub | None = None

    @property
    def stub(self) -> pb_grpc.InferenceServiceStub:
        if self._stub is None:
            self._stub = pb_grpc.InferenceServiceStub(self.channel)
        return self._stub

    async def close(self) -> None:
        await super().close()
        self._stub = None


INFERENCE: web.AppKey[Inference] = web.AppKey("inference", Inference)
SETTINGS: web.AppKey[GatewaySettings] = web.AppKey("settings", GatewaySettings)


def call_options(headers: Mapping[str, str], max_timeout_s: float) -> dict[str, Any]:
    """`timeout` and `metadata` for one call made on behalf of a request with these (case-insensitive)
    headers."""
    metadata = [(name, headers[name]) for name in FORWARDED_HEADERS if headers.get(name)]
    timeout = max_timeout_s
    raw = headers.get(TIMEOUT_HEADER)
    if raw is not None:
        try:
            wanted = float(raw)
        except ValueError:
            wanted = math.nan
        if not (math.isfinite(wanted) and wanted > 0):
            raise invalid(None, f"Header {TIMEOUT_HEADER} must be a positive number of seconds.")
        timeout = min(timeout, wanted)
    return {"timeout": timeout, "metadata": metadata}


def request_options(request: web.Request) -> dict[str, Any]:
    """call_options under the gateway's own bound (LLMMESH_GATEWAY_TIMEOUT_S)."""
    return call_options(request.headers, request.app[SETTINGS].timeout_s)


async def list_models_of(request: web.Request) -> pb.ListModelsResponse:
    """ListModels on behalf of `request` (every front door lists models from it)."""
    try:
        return await request.app[INFERENCE].stub.ListModels(pb.ListModelsRequest(), **request_options(request))
    except grpc.aio.AioRpcError as exc:
        raise errors.from_rpc_error(exc) from None


async def drain(call: Any, timeout_s: float = 5.0) -> None:
    """After a stream's final event, let the call end on its own (no CANCELLED in the service's
    books); cancel it if it lingers."""
    try:
        async with asyncio.timeout(timeout_s):
            async for _ in call:
                pass
    except (TimeoutError, grpc.aio.AioRpcError):
        call.cancel()
