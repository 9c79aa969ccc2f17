"""What the channel does on its own: retries from the service config, deadlines, metadata, TLS.

A tiny grpc.aio InferenceService that fails on demand and records what it received stands in for
the mesh, so the number of attempts that reached the server can be counted exactly.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from llmmesh.inference.v1 import inference_service_pb2 as pb
from llmmesh.inference.v1 import inference_service_pb2_grpc as pb_grpc
from llmmesh_client import (
    AsyncLlmMesh,
    Deadlines,
    InternalError,
    LlmMesh,
    RateLimitedError,
    RetryPolicy,
    Tls,
    UnavailableError,
)
from llmmesh_client import methods as sdk_methods
from llmmesh_client.config import ClientConfig, channel_options, service_config
from tests.support.certs import make_certificates

FAST_RETRY = RetryPolicy(max_attempts=3, initial_backoff_s=0.01, max_backoff_s=0.05)


class Flaky(pb_grpc.InferenceServiceServicer):
    """Fails each method with `failures[method]` (code, count) before answering; records metadata."""

    def __init__(self, failures: dict[str, tuple[grpc.StatusCode, int]] | None = None) -> None:
        self.failures = failures or {}
        self.calls: Counter[str] = Counter()
        self.metadata: dict[str, list[dict[str, str]]] = defaultdict(list)
        self.time_remaining: dict[str, float | None] = {}

    async def _enter(self, method: str, context: grpc.aio.ServicerContext) -> None:
        self.calls[method] += 1
        self.metadata[method].append({k: v for k, v in context.invocation_metadata() if isinstance(v, str)})
        self.time_remaining[method] = context.time_remaining()
        code, count = self.failures.get(method, (grpc.StatusCode.OK, 0))
        if self.calls[method] <= count:
            await context.abort(code, f"{method} failing on purpose")

    async def ListModels(self, request: Any, context: grpc.aio.ServicerContext) -> pb.ListModelsResponse:
        await self._enter("ListModels", context)
        return pb.ListModelsResponse(default_model="m", models=[pb.ModelInfo(name="m")])

    async def ListBackends(self, request: Any, context: grpc.aio.ServicerContext) -> pb.ListBackendsResponse:
        await self._enter("ListBackends", context)
        return pb.ListBackendsResponse()

    async def Embed(self, request: Any, context: grpc.aio.ServicerContext) -> pb.EmbedResponse:
        await self._enter("Embed", context)
        return pb.EmbedResponse(model="m", embeddings=[pb.Embedding(values=[1.0]) for _ in request.inputs])

    async def CompleteChat(self, request: Any, context: grpc.aio.ServicerContext) -> pb.CompleteChatResponse:
        await self._enter("CompleteChat", context)
        return pb.CompleteChatResponse(message=pb.Message(role=pb.ROLE_ASSISTANT, content="ok"))

    async def Generate(self, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[pb.GenerateResponse]:
        await self._enter("Generate", context)
        yield pb.GenerateResponse(done=pb.GenerationDone(model="m", done_reason="stop"))


async def serve(servicer: Flaky, credentials: grpc.ServerCredentials | None = None) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server()
    pb_grpc.add_InferenceServiceServicer_to_server(servicer, server)
    if credentials is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    return server, f"127.0.0.1:{port}"


UNAVAILABLE_ONCE = (grpc.StatusCode.UNAVAILABLE, 1)


@pytest.mark.parametrize("method", ["ListModels", "ListBackends", "Embed"])
async def test_idempotent_methods_are_retried_on_unavailable(method: str) -> None:
    flaky = Flaky({method: UNAVAILABLE_ONCE})
    server, address = await serve(flaky)
    try:
        async with AsyncLlmMesh(address, retry=FAST_RETRY) as client:
            calls = {"ListModels": client.inference.list_models, "ListBackends": client.inference.list_backends,
                     "Embed": lambda: client.inference.embed(["x"])}
            await calls[method]()
    finally:
        await server.stop(None)
    assert flaky.calls[method] == 2
    # Both attempts carried the same request id: a retry is the same request.
    ids = {md["x-request-id"] for md in flaky.metadata[method]}
    assert len(ids) == 1


@pytest.mark.parametrize("method", ["Generate", "CompleteChat"])
async def test_generation_is_never_retried(method: str) -> None:
    flaky = Flaky({method: UNAVAILABLE_ONCE})
    server, address = await serve(flaky)
    try:
        async with AsyncLlmMesh(address, retry=FAST_RETRY) as client:
            with pytest.raises(UnavailableError) as err:
                if method == "Generate":
                    _ = [e async for e in client.inference.generate("hi")]
                else:
                    await client.inference.complete_chat([("user", "hi")])
            # The failure was not an outage of the whole channel: the same call now succeeds.
            again = await client.inference.complete_chat([("user", "hi")]) if method == "CompleteChat" else None
    finally:
        await server.stop(None)
    assert flaky.calls[method] == (2 if again is not None else 1)
    assert "failing on purpose" in err.value.message


@pytest.mark.parametrize("code, error", [(grpc.StatusCode.RESOURCE_EXHAUSTED, RateLimitedError),
                                         (grpc.StatusCode.INTERNAL, InternalError)])
async def test_other_codes_are_not_retried_even_for_idempotent_methods(code: grpc.StatusCode, error: type) -> None:
    flaky = Flaky({"ListModels": (code, 1)})
    server, address = await serve(flaky)
    try:
        async with AsyncLlmMesh(address, retry=FAST_RETRY) as client:
            with pytest.raises(error):
                await client.inference.list_models()
    finally:
        await server.stop(None)
    assert flaky.calls["ListModels"] == 1


def test_service_config_retries_exactly_the_idempotent_methods() -> None:
    config = service_config(RetryPolicy())
    (entry,) = config["methodConfig"]
    names = {(n["service"], n["method"]) for n in entry["name"]}
    assert names == {("llmmesh.inference.v1.InferenceService", "ListModels"),
                     ("llmmesh.inference.v1.InferenceService", "ListBackends"),
                     ("llmmesh.inference.v1.InferenceService", "Embed"),
                     ("llmmesh.judge.v1.JudgeService", "ListCriteria"),
                     ("llmmesh.tooluse.v1.ToolUseService", "ListTools"),
                     ("llmmesh.runs.v1.RunsService", "GetRun"),
                     ("llmmesh.runs.v1.RunsService", "ListRuns"),
                     ("grpc.health.v1.Health", "Check")}
    assert entry["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]
    options = dict(channel_options(ClientConfig()))
    assert options["grpc.enable_retries"] == 1 and json.loads(options["grpc.service_config"]) == config
    # Every RPC in the protos has an entry in the SDK's table (the table refuses to load otherwise).
    assert {m.path for m in sdk_methods.ALL} >= {"/llmmesh.planexecute.v1.PlanExecuteService/RunStream",
                                                 "/llmmesh.collaboration.v1.CollaborationService/RunStream"}


def _about(remaining: float | None, seconds: float) -> bool:
    """The deadline the server saw is `seconds` (gRPC rounds the grpc-timeout header up a little)."""
    return remaining is not None and seconds - 5 < remaining <= seconds + 1.5


async def test_deadlines_default_per_kind_and_are_overridable() -> None:
    flaky = Flaky()
    server, address = await serve(flaky)
    defaults = Deadlines()
    try:
        async with AsyncLlmMesh(address) as client:
            await client.inference.list_models()
            _ = [e async for e in client.inference.generate("hi")]
            await client.inference.complete_chat([("user", "hi")])
            await client.inference.embed(["x"], timeout=7)  # per call
        seen = dict(flaky.time_remaining)
        assert _about(seen["ListModels"], defaults.listing)
        assert _about(seen["Generate"], defaults.generation)
        assert _about(seen["CompleteChat"], defaults.completion)
        assert _about(seen["Embed"], 7)

        async with AsyncLlmMesh(address, timeout=40) as client:  # client-wide, every kind
            _ = [e async for e in client.inference.generate("hi")]
            await client.inference.list_models()
        assert _about(flaky.time_remaining["Generate"], 40) and _about(flaky.time_remaining["ListModels"], 40)

        async with AsyncLlmMesh(address, deadlines=Deadlines(listing=20)) as client:  # one kind
            await client.inference.list_models()
            await client.inference.embed(["x"])
        assert _about(flaky.time_remaining["ListModels"], 20) and _about(flaky.time_remaining["Embed"], defaults.embed)
    finally:
        await server.stop(None)


async def test_api_key_and_request_id_metadata_on_every_call() -> None:
    flaky = Flaky()
    server, address = await serve(flaky)
    try:
        async with AsyncLlmMesh(address, api_key="s3cret") as client:
            await client.inference.list_models(request_id="given-id")
            await client.inference.list_models()
            _ = [e async for e in client.inference.generate("hi")]

        def sync_calls() -> None:
            with LlmMesh(address, api_key="s3cret") as client:
                client.inference.embed(["x"])

        await asyncio.wait_for(asyncio.to_thread(sync_calls), 30)
    finally:
        await server.stop(None)
    seen = [md for calls in flaky.metadata.values() for md in calls]
    assert len(seen) == 4 and all(md["authorization"] == "Bearer s3cret" for md in seen)
    ids = [md["x-request-id"] for md in flaky.metadata["ListModels"]]
    assert ids[0] == "given-id" and ids[1] != "given-id" and len(ids[1]) == 32
    assert all(md["user-agent"].startswith("llmmesh-python/") for md in seen)


# ---- TLS -----------------------------------------------------------------------------------------


async def test_tls_and_mutual_tls(tmp_path: Path) -> None:
    certs = (await asyncio.to_thread(make_certificates, tmp_path)).as_bytes()
    server_creds = grpc.ssl_server_credentials([(certs["server.key"], certs["server.pem"])],
                                               root_certificates=certs["ca.pem"], require_client_auth=True)
    flaky = Flaky()
    server, address = await serve(flaky, server_creds)
    try:
        mtls = Tls(root_certificates=certs["ca.pem"], certificate_chain=certs["client.pem"],
                   private_key=certs["client.key"])
        async with AsyncLlmMesh(address, tls=mtls) as client:
            assert (await client.inference.list_models()).default_model == "m"
        async with AsyncLlmMesh(address, tls=Tls(root_certificates=certs["ca.pem"]),
                                retry=RetryPolicy(max_attempts=2)) as client:
            with pytest.raises(UnavailableError):  # the server demands a client certificate
                await client.inference.list_models(timeout=5)
        async with AsyncLlmMesh(address, retry=RetryPolicy(max_attempts=2)) as client:  # plaintext
            with pytest.raises(UnavailableError):
                await client.inference.list_models(timeout=5)
    finally:
        await server.stop(None)
    assert flaky.calls["ListModels"] == 1
    with pytest.raises(ValueError, match="both"):
        Tls(certificate_chain=certs["client.pem"]).credentials()
