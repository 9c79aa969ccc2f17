"""Every failure becomes an LlmMeshError subclass carrying the server's rich details."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
from pathlib import Path

import grpc
import pytest
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from prometheus_client import CollectorRegistry

from llmmesh.settings import AuthSettings, Settings
from llmmesh_client import (
    AsyncLlmMesh,
    AuthenticationError,
    InternalError,
    InvalidArgumentError,
    LlmMesh,
    LlmMeshError,
    MalformedModelOutputError,
    NotFoundError,
    PermissionDeniedError,
    QuorumNotReachedError,
    RateLimitedError,
    UnavailableError,
)
from llmmesh_client.errors import FieldViolation, from_status
from tests.clients.support import MODEL, collect, sim, target
from tests.support.inproc import inproc_mesh
from tests.support.sims import set_fault


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


async def test_invalid_fields_come_back_as_field_violations(inference_mesh) -> None:
    async with inference_mesh(sim()) as m, AsyncLlmMesh(target(m)) as client:
        with pytest.raises(InvalidArgumentError) as err:
            await collect(client.inference.generate("", model=MODEL, options={"temperature": 5, "max_tokens": 10**6}))
    fields = {v.field for v in err.value.field_violations}
    assert fields == {"prompt", "options.temperature", "options.max_tokens"}
    assert all(isinstance(v, FieldViolation) and v.description for v in err.value.field_violations)
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT and "prompt" in err.value.message
    assert len(err.value.request_id) == 32  # generated per call


async def test_unknown_model_is_not_found_with_resource_info(inference_mesh) -> None:
    async with inference_mesh(sim()) as m, AsyncLlmMesh(target(m)) as client:
        with pytest.raises(NotFoundError) as unary:
            await client.inference.complete_chat([("user", "hi")], model="nope")
        with pytest.raises(NotFoundError) as streamed:
            await collect(client.inference.generate("hi", model="nope"))
    for err in (unary.value, streamed.value):
        assert err.resource is not None and err.resource.resource_type == "model"
        assert err.resource.resource_name == "nope" and "m:latest" in err.message


async def test_a_failed_chat_turn_raises_and_the_session_goes_on(inference_mesh) -> None:
    async with inference_mesh(sim()) as m, AsyncLlmMesh(target(m)) as client:
        async with client.inference.chat() as session:
            with pytest.raises(NotFoundError):
                await collect(session.send("x", model="missing"))
            events = await collect(session.send("y", model=MODEL, options={"max_tokens": 2}))
    assert events[-1].HasField("done") and events[-1].turn == 2


async def test_saturation_is_rate_limited_with_retry_after(inference_mesh) -> None:
    # No queue (length 0): a saturated backend refuses at once.
    async with inference_mesh(sim(token_delay_s=0.1, tokens=100), max_inflight_per_backend=1,
                              queue_max_length=0) as m, \
            AsyncLlmMesh(target(m)) as client:
        busy = client.inference.generate("occupy the backend", model=MODEL)
        first = await anext(busy)
        assert first.HasField("delta")
        with pytest.raises(RateLimitedError) as err:
            await client.inference.complete_chat([("user", "me too")], model=MODEL)
        await busy.aclose()  # type: ignore[attr-defined]
    assert err.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED and err.value.retry_after == 0.5


async def test_backends_down_is_unavailable_with_retry_after(inference_mesh) -> None:
    async with inference_mesh(sim(), max_attempts=2) as m, AsyncLlmMesh(target(m)) as client:
        await set_fault(m.sims[0], "busy")
        with pytest.raises(UnavailableError) as err:
            await collect(client.inference.generate("hi", model=MODEL))
    assert type(err.value) is UnavailableError and err.value.retry_after is not None and err.value.retry_after > 0


def test_error_events_map_like_rpc_errors() -> None:
    delay = duration_pb2.Duration(seconds=2, nanos=500_000_000)
    malformed = status_pb2.Status(code=code_pb2.UNAVAILABLE, message="bad json", details=[
        _pack(error_details_pb2.ErrorInfo(reason="MALFORMED_MODEL_OUTPUT", domain="llmmesh")),
        _pack(error_details_pb2.RetryInfo(retry_delay=delay))])
    err = from_status(malformed, "rid")
    assert isinstance(err, MalformedModelOutputError) and isinstance(err, UnavailableError)
    assert err.retry_after == 2.5 and err.reason == "MALFORMED_MODEL_OUTPUT" and err.request_id == "rid"

    quorum = status_pb2.Status(code=code_pb2.UNAVAILABLE, message="2 of 3 jurors failed", details=[
        _pack(error_details_pb2.ErrorInfo(reason="QUORUM_NOT_REACHED"))])
    assert isinstance(from_status(quorum), QuorumNotReachedError)

    internal = from_status(status_pb2.Status(code=code_pb2.INTERNAL, message="internal error (request id abc123)"),
                           "ours")
    assert isinstance(internal, InternalError) and internal.request_id == "abc123"
    assert str(internal) == "INTERNAL: internal error (request id abc123)"

    odd = from_status(status_pb2.Status(code=code_pb2.OUT_OF_RANGE, message="x", details=[_pack(status_pb2.Status())]))
    assert type(odd) is LlmMeshError and odd.code == grpc.StatusCode.OUT_OF_RANGE
    assert isinstance(odd.details[0], any_pb2.Any)  # unknown detail types are kept packed


# ---- API keys ----------------------------------------------------------------------------------


def _key_file(tmp_path: Path, **scopes: list[str]) -> str:
    keys = [{"name": name, "sha256": hashlib.sha256(f"key-{name}".encode()).hexdigest(), "scopes": s}
            for name, s in scopes.items()]
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"keys": keys}))
    return str(path)


async def test_api_key_is_sent_as_bearer_metadata(tmp_path: Path, settings: Settings,
                                                  registry: CollectorRegistry) -> None:
    secured = dataclasses.replace(settings, auth=AuthSettings(
        api_keys_file=_key_file(tmp_path, ci=["inference"], other=["judge"])))
    async with inproc_mesh(secured, registry, sim()) as m:
        async with AsyncLlmMesh(target(m), api_key="key-ci") as client:
            assert [x.name for x in (await client.inference.list_models()).models] == ["m:latest"]
            events = await collect(client.inference.generate("hi", model=MODEL, options={"max_tokens": 2}))
            assert events[-1].HasField("done")
            async with client.inference.chat(model=MODEL) as session:
                assert (await collect(session.send("hi", options={"max_tokens": 1})))[-1].HasField("done")
        for key in (None, "wrong"):
            async with AsyncLlmMesh(target(m), api_key=key) as client:
                with pytest.raises(AuthenticationError) as err:
                    await client.inference.list_models()
                with pytest.raises(AuthenticationError):
                    await collect(client.inference.chat(model=MODEL).send("hi"))
            assert err.value.code == grpc.StatusCode.UNAUTHENTICATED
        async with AsyncLlmMesh(target(m), api_key="key-other") as client:
            with pytest.raises(PermissionDeniedError):
                await client.inference.list_models()
            assert await client.health() == "SERVING"  # probes need no key

        def sync_call() -> int:
            with LlmMesh(target(m), api_key="key-ci") as client:
                return len(client.inference.list_models().models)

        assert await asyncio.wait_for(asyncio.to_thread(sync_call), 30) == 1
