"""LLMMESH_REDIS_FAILURE_POLICY=closed in a real inference service over a real redis-server: while
Redis is away, a request whose key has limits is refused with UNAVAILABLE and a message that says
why (at once: no hang), a key without limits is served, and once Redis is back all is as before."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from prometheus_client import CollectorRegistry

from llmmesh.inference.v1 import inference_service_pb2 as pb
from llmmesh.settings import AuthSettings, FailurePolicy, Settings, SharedStateSettings
from tests.support.inproc import inproc_mesh
from tests.support.keys import KeySpec, bearer, write_keys
from tests.support.redis_proc import RedisServer
from tests.support.sims import sim


async def test_fail_closed_refuses_limited_keys_while_redis_is_away(
        settings: Settings, registry: CollectorRegistry, redis_server: RedisServer, tmp_path: Path) -> None:
    keys = write_keys(tmp_path / "keys.json", limited=KeySpec(("*",), {"requests_per_second": 100}),
                      free=KeySpec(("*",)))
    secured = dataclasses.replace(settings, auth=AuthSettings(api_keys_file=str(tmp_path / "keys.json")))
    shared = SharedStateSettings(redis_url=redis_server.url, failure_policy=FailurePolicy.CLOSED, retry_s=0.2)
    async with inproc_mesh(secured, registry, sim(), shared_state=shared) as m:
        async def list_models(key: str) -> pb.ListModelsResponse:
            return await m.stub.ListModels(pb.ListModelsRequest(), metadata=bearer(keys[key]), timeout=5)

        assert (await list_models("limited")).models
        redis_server.kill()
        t0 = time.monotonic()
        for _ in range(5):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await list_models("limited")
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "Redis" in err.value.details() and "closed" in err.value.details()
        assert time.monotonic() - t0 < 5  # five refusals, no call left waiting on a dead Redis
        retry = error_details_pb2.RetryInfo()
        assert rpc_status.from_call(err.value).details[0].Unpack(retry)
        assert (await list_models("free")).models  # nothing to check for a key without limits
        assert registry.get_sample_value("llmmesh_redis_up") == 0

        redis_server.restart()
        deadline = time.monotonic() + 10
        while registry.get_sample_value("llmmesh_redis_up") != 1:
            assert time.monotonic() < deadline, "did not reconnect"
            await asyncio.sleep(0.1)
        assert (await list_models("limited")).models
