"""API keys across real servers in this process, shaped like the microservices deployment: an
inference server and a judge server that calls it, sharing only the key file and the service key
file. A judge-only key runs a judge evaluation (the judge calls inference as the service identity,
naming the caller), its tokens are charged to it at the inference server, its request rate is
limited at the judge, and a client cannot borrow the service identity's powers."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status
from prometheus_client import CollectorRegistry, generate_latest

from llmmesh.common.v1 import common_pb2
from llmmesh.framework.auth import ON_BEHALF_OF
from llmmesh.framework.keyfile import KeyFileError
from llmmesh.framework.server import MeshServer, create_server
from llmmesh.inference.v1 import inference_service_pb2 as ipb
from llmmesh.inference.v1 import inference_service_pb2_grpc as ipb_grpc
from llmmesh.judge.v1 import judge_service_pb2 as jpb
from llmmesh.judge.v1 import judge_service_pb2_grpc as jpb_grpc
from llmmesh.settings import AuthSettings, InferenceSettings, Settings, SettingsError
from llmmesh.simulator.config import ScriptRule, SimulatorConfig
from llmmesh.simulator.runner import RunningSimulator
from llmmesh.topology.description import INGRESS_HEADER
from tests.support.inproc import inproc_mesh
from tests.support.keys import KeySpec, bearer, write_keys
from tests.support.sims import start_sims

pytestmark = pytest.mark.xdist_group("security_inproc")

MODEL = "m"
VERDICT = json.dumps({"reasoning": "Scripted.", "score": 4})
TIMEOUT = 20


@dataclass
class TwoServers:
    inference: MeshServer
    judge: MeshServer
    inference_port: int
    judge_port: int
    keys: dict[str, str]
    sim: RunningSimulator


def _settings(base: Settings, services: tuple[str, ...], auth: AuthSettings, **changes: object) -> Settings:
    return dataclasses.replace(base, services=services, auth=auth, **changes)  # type: ignore[arg-type]


@asynccontextmanager
async def two_servers(settings: Settings, tmp_path: Path, **keys: KeySpec) -> AsyncIterator[TwoServers]:
    """An inference server and a judge server (its inference_target), API keys on, one service key."""
    plain = write_keys(tmp_path / "keys.json", **keys)
    (tmp_path / "service.key").write_text("shared-internal-service-key-0123456789\n")
    auth = AuthSettings(str(tmp_path / "keys.json"), str(tmp_path / "service.key"))
    (sim,) = await start_sims(SimulatorConfig(name="a", models=(MODEL,), scripts=(
        ScriptRule(match="regex:(?s).*", response=VERDICT),)))
    inference_settings = _settings(settings, ("inference",), auth, inference=dataclasses.replace(
        InferenceSettings(), backends=(f"a={sim.url}",), inventory_refresh_s=0.5))
    inference, inference_port = create_server(inference_settings, CollectorRegistry())
    await inference.start()
    judge, judge_port = create_server(
        _settings(settings, ("judge",), auth, inference_target=f"127.0.0.1:{inference_port}"), CollectorRegistry())
    await judge.start()
    try:
        yield TwoServers(inference, judge, inference_port, judge_port, plain, sim)
    finally:
        await judge.stop()
        await inference.stop()
        await sim.stop()


def evaluate_request(answer: str = "4") -> jpb.EvaluateRequest:
    return jpb.EvaluateRequest(question="What is 2+2?", answer=answer, model=MODEL,
                               options=common_pb2.GenerationOptions(max_tokens=32))


def details(err: grpc.aio.AioRpcError) -> tuple[float, str]:
    """(RetryInfo delay in seconds, QuotaFailure subject) of a RESOURCE_EXHAUSTED."""
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, err
    status = rpc_status.from_call(err)
    info, failure = error_details_pb2.RetryInfo(), error_details_pb2.QuotaFailure()
    assert status is not None and status.details[0].Unpack(info) and status.details[1].Unpack(failure)
    return info.retry_delay.ToNanoseconds() / 1e9, failure.violations[0].subject


async def failure(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return err.value


async def test_a_judge_only_key_runs_the_judge_which_calls_inference_as_the_service(
        settings: Settings, tmp_path: Path) -> None:
    async with two_servers(settings, tmp_path, judge=KeySpec(("judge",)), app=KeySpec(("inference",))) as m:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{m.judge_port}") as jch, \
                grpc.aio.insecure_channel(f"127.0.0.1:{m.inference_port}") as ich:
            judge, inference = jpb_grpc.JudgeServiceStub(jch), ipb_grpc.InferenceServiceStub(ich)
            result = await judge.Evaluate(evaluate_request(), metadata=bearer(m.keys["judge"]), timeout=TIMEOUT)
            assert result.score == 4 and result.usage.model_calls == 1
            # The same key may not call inference itself; nor may an inference key call the judge.
            denied = await failure(inference.ListModels(ipb.ListModelsRequest(), metadata=bearer(m.keys["judge"]),
                                                        timeout=TIMEOUT))
            assert denied.code() == grpc.StatusCode.PERMISSION_DENIED and "may not call inference" in denied.details()
            denied = await failure(judge.Evaluate(evaluate_request(), metadata=bearer(m.keys["app"]), timeout=TIMEOUT))
            assert denied.code() == grpc.StatusCode.PERMISSION_DENIED
            missing = await failure(judge.Evaluate(evaluate_request(), timeout=TIMEOUT))
            assert missing.code() == grpc.StatusCode.UNAUTHENTICATED and "missing API key" in missing.details()
            # A client naming another key is refused (only the service identity may), even with scope.
            spoof = await failure(inference.ListModels(
                ipb.ListModelsRequest(), metadata=[*bearer(m.keys["app"]), (ON_BEHALF_OF, "judge")], timeout=TIMEOUT))
            assert spoof.code() == grpc.StatusCode.PERMISSION_DENIED and "on behalf" in spoof.details()


async def test_health_and_reflection_are_open_on_the_own_port_but_not_through_the_ingress(
        settings: Settings, tmp_path: Path) -> None:
    async with two_servers(settings, tmp_path, judge=KeySpec(("judge",))) as m:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{m.inference_port}") as ch:
            health = health_pb2_grpc.HealthStub(ch)
            probe = await health.Check(health_pb2.HealthCheckRequest(), timeout=TIMEOUT)
            assert probe.status == health_pb2.HealthCheckResponse.SERVING
            # As the ingress forwards it (it sets INGRESS_HEADER on every request): a key is needed.
            via_ingress = [(INGRESS_HEADER, "1")]
            refused = await failure(health.Check(health_pb2.HealthCheckRequest(), metadata=via_ingress,
                                                 timeout=TIMEOUT))
            assert refused.code() == grpc.StatusCode.UNAUTHENTICATED
            # Any valid key will do, whatever its scopes.
            ok = await health.Check(health_pb2.HealthCheckRequest(), metadata=[*via_ingress, *bearer(m.keys["judge"])],
                                    timeout=TIMEOUT)
            assert ok.status == health_pb2.HealthCheckResponse.SERVING

            refl = reflection_pb2_grpc.ServerReflectionStub(ch)
            list_services = [reflection_pb2.ServerReflectionRequest(list_services="")]
            open_names = [s.name async for r in refl.ServerReflectionInfo(iter(list_services), timeout=TIMEOUT)
                          for s in r.list_services_response.service]
            assert "llmmesh.judge.v1.JudgeService" in open_names
            with pytest.raises(grpc.aio.AioRpcError) as err:
                async for _ in refl.ServerReflectionInfo(iter(list_services), metadata=via_ingress, timeout=TIMEOUT):
                    pass
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_token_budget_is_charged_to_the_caller_at_inference(settings: Settings, tmp_path: Path) -> None:
    # The judge's prompt alone is hundreds of tokens: one evaluation runs the budget into debt, and
    # RetryInfo says how long that debt takes to refill.
    async with two_servers(settings, tmp_path, judge=KeySpec(("judge",), {"tokens_per_minute": 50}),
                           other=KeySpec(("judge",))) as m:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{m.judge_port}") as jch:
            judge = jpb_grpc.JudgeServiceStub(jch)
            await judge.Evaluate(evaluate_request(), metadata=bearer(m.keys["judge"]), timeout=TIMEOUT)
            # Another answer: the same request again would be a response-cache hit, which costs nothing.
            over = await failure(judge.Evaluate(evaluate_request("four"), metadata=bearer(m.keys["judge"]),
                                                timeout=TIMEOUT))
            delay, subject = details(over)
            assert subject == "key:judge" and delay >= 1 and "token budget" in over.details()
            # Another key's budget is its own.
            assert (await judge.Evaluate(evaluate_request(), metadata=bearer(m.keys["other"]), timeout=TIMEOUT)).score
        # The refusal happened at the inference server (its quota counter names the key), not the judge.
        assert 'llmmesh_quota_rejections_total{key="judge",quota="tokens_per_minute"} 1.0' in _metrics(m.inference)
        assert 'llmmesh_quota_rejections_total{' not in _metrics(m.judge)


def _metrics(server: MeshServer) -> str:
    return generate_latest(server.registry).decode()


async def test_request_rate_is_limited_per_key_with_retry_info(settings: Settings, tmp_path: Path) -> None:
    async with two_servers(settings, tmp_path, judge=KeySpec(("judge",), {"requests_per_second": 1, "burst": 2}),
                           free=KeySpec(("judge",))) as m:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{m.judge_port}") as jch:
            judge = jpb_grpc.JudgeServiceStub(jch)
            listing = jpb.ListCriteriaRequest()
            for _ in range(2):
                await judge.ListCriteria(listing, metadata=bearer(m.keys["judge"]), timeout=TIMEOUT)
            over = await failure(judge.ListCriteria(listing, metadata=bearer(m.keys["judge"]), timeout=TIMEOUT))
            delay, subject = details(over)
            assert subject == "key:judge" and 0 < delay <= 1.0 and "request rate" in over.details()
            for _ in range(5):  # a key without limits is not slowed down by another's
                await judge.ListCriteria(listing, metadata=bearer(m.keys["free"]), timeout=TIMEOUT)
            await asyncio.sleep(delay + 0.05)
            await judge.ListCriteria(listing, metadata=bearer(m.keys["judge"]), timeout=TIMEOUT)


async def test_a_pattern_run_is_one_request_even_in_the_monolith(settings: Settings, tmp_path: Path) -> None:
    """One process hosts judge and inference (one set of buckets, a per-process service key): the
    judge's inference call on the caller's behalf must not take a second request from the bucket."""
    keys = write_keys(tmp_path / "keys.json", judge=KeySpec(("judge",), {"requests_per_second": 0.1, "burst": 2}))
    monolith = dataclasses.replace(settings, auth=AuthSettings(str(tmp_path / "keys.json")))
    rule = ScriptRule(match="regex:(?s).*", response=VERDICT)
    async with inproc_mesh(monolith, CollectorRegistry(), SimulatorConfig(name="a", models=(MODEL,), scripts=(rule,)),
                           services=("inference", "judge")) as m:
        judge = jpb_grpc.JudgeServiceStub(m.channel)
        assert (await judge.Evaluate(evaluate_request(), metadata=bearer(keys["judge"]), timeout=TIMEOUT)).score == 4
        await judge.ListCriteria(jpb.ListCriteriaRequest(), metadata=bearer(keys["judge"]), timeout=TIMEOUT)
        over = await failure(judge.ListCriteria(jpb.ListCriteriaRequest(), metadata=bearer(keys["judge"]),
                                                timeout=TIMEOUT))
        assert details(over)[0] > 5


async def test_direct_generation_budget_on_every_inference_rpc_shape(settings: Settings, tmp_path: Path) -> None:
    async with two_servers(settings, tmp_path, app=KeySpec(("inference",), {"tokens_per_minute": 5})) as m:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{m.inference_port}") as ich:
            inference = ipb_grpc.InferenceServiceStub(ich)
            key = bearer(m.keys["app"])
            events = [e async for e in inference.Generate(ipb.GenerateRequest(prompt="hi", model=MODEL), metadata=key,
                                                          timeout=TIMEOUT)]
            assert events[-1].done.output_tokens > 0
            over = await failure(inference.CompleteChat(ipb.CompleteChatRequest(
                model=MODEL, messages=[ipb.Message(role=ipb.ROLE_USER, content="hi")]), metadata=key, timeout=TIMEOUT))
            assert details(over)[1] == "key:app"
            with pytest.raises(grpc.aio.AioRpcError) as err:
                async for _ in inference.Generate(ipb.GenerateRequest(prompt="hi", model=MODEL), metadata=key,
                                                  timeout=TIMEOUT):
                    pass
            assert details(err.value)[1] == "key:app"
            over = await failure(inference.Embed(ipb.EmbedRequest(model=MODEL, inputs=["x"]), metadata=key,
                                                 timeout=TIMEOUT))
            assert over.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            # The bidi chat keeps the conversation: the refused turn is an error event.
            turn = ipb.ChatRequest(turn=ipb.ChatTurn(model=MODEL, messages=[ipb.Message(role=ipb.ROLE_USER,
                                                                                        content="hi")]))
            chat = [e async for e in inference.Chat(iter([turn]), metadata=key, timeout=TIMEOUT)]
            assert chat[-1].error.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]


async def test_misconfigured_keys_fail_at_start(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "keys.json").write_text(json.dumps({"keys": [{"name": "x", "sha256": "0" * 64, "scopes": ["nope"]}]}))
    with pytest.raises(KeyFileError, match="unknown"):
        create_server(dataclasses.replace(settings, auth=AuthSettings(str(tmp_path / "keys.json"))),
                      CollectorRegistry())
    write_keys(tmp_path / "keys.json", a=KeySpec(("*",)))
    (tmp_path / "short.key").write_text("short\n")
    for service_key in ("short.key", "missing.key"):
        with pytest.raises(SettingsError, match="LLMMESH_SERVICE_KEY_FILE"):
            create_server(dataclasses.replace(settings, auth=AuthSettings(
                str(tmp_path / "keys.json"), str(tmp_path / service_key))), CollectorRegistry())
    with pytest.raises(SettingsError, match="LLMMESH_TLS_KEY"):
        Settings.from_env({"LLMMESH_TLS_CERT": "c.pem", "LLMMESH_TLS_CA": "ca.pem"})
