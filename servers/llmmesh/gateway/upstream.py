"""The gateway's side of the inference contract: one gRPC channel, and per-request call options
(caller's API key and request id as metadata, a deadline on every call)."""

from __future__ import annotations

import math
from typing import Any

import grpc
from aiohttp import web

from llmmesh.framework.tls import aio_channel
from llmmesh.gateway.errors import invalid
from llmmesh.inference.v1 import inference_service_pb2_grpc as pb_grpc
from llmmesh.settings import ServiceTlsSettings

# Headers passed through as gRPC metadata: API keys are enforced by the services themselves.
FORWARDED_HEADERS = ("authorization", "x-api-key", "x-request-id")
# Optional per-request deadline in seconds; it can only lower the gateway's own bound.
TIMEOUT_HEADER = "x-llmmesh-timeout-s"
_MAX_MESSAGE = 64 * 1024 * 1024


class Inference:
    """A lazily opened channel to the inference service (it must be created on the serving loop)."""

    def __init__(self, target: str, tls: ServiceTlsSettings | None = None) -> None:
        self.target = target
        # Mutual TLS toward the inference service, when the mesh runs with it.
        self.tls = tls or ServiceTlsSettings()
        self._channel: grpc.aio.Channel | None = None
        self._stub: pb_grpc.InferenceServiceStub | None = None

    @property
    def stub(self) -> pb_grpc.InferenceServiceStub:
        if self._stub is None:
            self._channel = aio_channel(self.target, self.tls, options=[
                ("grpc.max_receive_message_length", _MAX_MESSAGE),
                ("grpc.max_send_message_length", _MAX_MESSAGE),
            ])
            self._stub = pb_grpc.InferenceServiceStub(self._channel)
        return self._stub

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = self._stub = None


def call_options(request: web.Request, max_timeout_s: float) -> dict[str, Any]:
    """`timeout` and `metadata` for one inference call made on behalf of `request`."""
    metadata = [(name, request.headers[name]) for name in FORWARDED_HEADERS if request.headers.get(name)]
    timeout = max_timeout_s
    raw = request.headers.get(TIMEOUT_HEADER)
    if raw is not None:
        try:
            wanted = float(raw)
        except ValueError:
            wanted = math.nan
        if not (math.isfinite(wanted) and wanted > 0):
            raise invalid(None, f"Header {TIMEOUT_HEADER} must be a positive number of seconds.")
        timeout = min(timeout, wanted)
    return {"timeout": timeout, "metadata": metadata}
