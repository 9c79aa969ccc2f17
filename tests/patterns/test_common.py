"""The shared pattern layer against a real inference server and scripted simulator."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import grpc
import pytest

from llmmesh.common.model_call import ChatMessage
from llmmesh.framework import request_context
from llmmesh.patterns.model_client import ModelClient, RemoteError, metered
from llmmesh.patterns.structured import MalformedModelOutput, complete_json
from llmmesh.simulator.config import ScriptRule, SimulatorConfig
from tests.support.inproc import inproc_mesh
from tests.support.ports import free_port
from tests.support.sims import sim

SCHEMA = {"type": "object", "properties": {"score": {"type": "integer"}}, "required": ["score"]}


async def test_malformed_output_is_retried_then_accepted(inference_mesh) -> None:
    rules = (ScriptRule(match="rate", response="not json at all", times=2),
             ScriptRule(match="rate", response='{"score": 4}'))
    async with inference_mesh(sim(*rules)) as m:
        client = ModelClient(f"127.0.0.1:{m.port}")
        with metered() as meter:
            result = await complete_json(client, "m", [ChatMessage("user", "rate it")], SCHEMA, attempts=3)
        await client.close()
    assert result.value == {"score": 4}
    assert meter.model_calls == 3 and meter.output_tokens > 0


async def test_persistently_malformed_output_is_an_error_not_a_guess(inference_mesh) -> None:
    async with inference_mesh(sim(ScriptRule(match="rate", response='{"score": "high"}'))) as m:
        client = ModelClient(f"127.0.0.1:{m.port}")
        with pytest.raises(MalformedModelOutput) as err:
            await complete_json(client, "m", [ChatMessage("user", "rate it")], SCHEMA, attempts=2)
        await client.close()
    assert err.value.code == grpc.StatusCode.UNAVAILABLE and "score" in err.value.problem


async def test_remote_errors_keep_their_code(inference_mesh) -> None:
    async with inference_mesh(sim()) as m:
        client = ModelClient(f"127.0.0.1:{m.port}")
        with pytest.raises(RemoteError) as err:
            await client.complete("no-such-model", [ChatMessage("user", "x")])
        await client.close()
    assert err.value.code == grpc.StatusCode.NOT_FOUND and "m:latest" in err.value.message


async def test_deadline_of_the_caller_bounds_model_calls(inference_mesh) -> None:
    async with inference_mesh(SimulatorConfig(name="a", models=("m",), token_delay_s=0.2)) as m:
        err = await _failure_within(ModelClient(f"127.0.0.1:{m.port}"), 0.3)
    assert err.code == grpc.StatusCode.DEADLINE_EXCEEDED


async def test_a_model_call_waits_for_a_restarting_inference_service(settings, registry) -> None:
    # The inference service is away (restarting) when the call is made, and back a second later: the
    # call was never sent, so it waits and succeeds instead of failing at once with UNAVAILABLE.
    port = free_port()
    client = ModelClient(f"127.0.0.1:{port}")
    call = asyncio.create_task(client.complete("m", [ChatMessage("user", "x")]))
    await asyncio.sleep(1.0)
    assert not call.done()
    async with inproc_mesh(dataclasses.replace(settings, port=port), registry, sim()):
        completion = await asyncio.wait_for(call, 15)
    await client.close()
    assert completion.output_tokens > 0


async def test_waiting_for_the_inference_service_ends_at_the_callers_deadline() -> None:
    err = await _failure_within(ModelClient(f"127.0.0.1:{free_port()}"), 0.5)  # nothing there, nor coming
    assert err.code == grpc.StatusCode.DEADLINE_EXCEEDED


async def _failure_within(client: ModelClient, seconds: float) -> RemoteError:
    """How a model call made with `seconds` left of the caller's deadline fails (it must); closes `client`."""
    token = request_context.deadline.set(time.monotonic() + seconds)
    try:
        with pytest.raises(RemoteError) as err:
            await client.complete("m", [ChatMessage("user", "x")])
    finally:
        request_context.deadline.reset(token)
        await client.close()
    return err.value
