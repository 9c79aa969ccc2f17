"""Every pattern run is stored and read back through RunsService, against real servers in this
process (the run store in SQLite): ids in responses, final events and headers; what a stored run
holds; `store: false`; failed and cancelled runs; listing filters and pages; deleting; and who may
see which runs when API keys are on."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from google.protobuf import timestamp_pb2
from prometheus_client import CollectorRegistry

from llmmesh.common.v1 import common_pb2
from llmmesh.judge.v1 import judge_service_pb2 as jpb
from llmmesh.judge.v1 import judge_service_pb2_grpc as jpb_grpc
from llmmesh.jury.v1 import jury_service_pb2 as jurypb
from llmmesh.jury.v1 import jury_service_pb2_grpc as jurypb_grpc
from llmmesh.runs.v1 import runs_service_pb2 as pb
from llmmesh.runs.v1 import runs_service_pb2_grpc as pb_grpc
from llmmesh.settings import AuthSettings, Settings
from llmmesh.simulator.config import ScriptRule
from llmmesh.topology.description import RUN_ID_HEADER
from tests.support.inproc import inproc_mesh
from tests.support.keys import KeySpec, bearer, write_keys
from tests.support.rpc import drain, violations
from tests.support.sims import sim

SERVICES = ("inference", "judge", "jury", "runs")
VERDICT = json.dumps({"reasoning": "Four is the sum.", "score": 5})
RULES = (ScriptRule(match="Criterion:", response=VERDICT),)
QUESTION = jpb.EvaluateRequest(question="What is 2+2?", answer="4", model="m")


def header(metadata) -> str:
    return dict(metadata or ())[RUN_ID_HEADER]


async def get(channel: grpc.aio.Channel, run_id: str, metadata=None) -> pb.Run:
    return (await pb_grpc.RunsServiceStub(channel).GetRun(pb.GetRunRequest(run_id=run_id), metadata=metadata)).run


async def listed(channel: grpc.aio.Channel, metadata=None, **fields) -> pb.ListRunsResponse:
    return await pb_grpc.RunsServiceStub(channel).ListRuns(pb.ListRunsRequest(**fields), metadata=metadata)


# ---- what is stored ------------------------------------------------------------------------------


async def test_a_unary_run_is_stored_whole_under_the_id_it_answered_with(inference_mesh) -> None:
    async with inference_mesh(sim(*RULES), services=SERVICES) as m:
        started = datetime.now(UTC)
        call = jpb_grpc.JudgeServiceStub(m.channel).Evaluate(QUESTION)
        resp = await call
        assert resp.run_id and header(await call.initial_metadata()) == resp.run_id
        run = await get(m.channel, resp.run_id)
    assert (run.run_id, run.pattern, run.method, run.status) == (resp.run_id, "judge", "Evaluate",
                                                                pb.RUN_STATUS_SUCCEEDED)
    assert run.principal == ""  # API keys are off
    assert dict(run.request) == {"question": "What is 2+2?", "answer": "4", "model": "m"}
    assert run.result["run_id"] == resp.run_id and run.result["score"] == 5
    assert run.result["verdict"] == "VERDICT_PASS" and run.result["reasoning"] == "Four is the sum."
    # The reasoning streamed as deltas, merged into one event (the result is kept apart).
    assert [list(e.keys()) for e in run.events] == [["reasoning"]]
    assert "Four is the sum." in run.events[0]["reasoning"]["text"]
    assert (list(run.models), list(run.backends)) == (["m"], ["a"])
    assert run.usage.model_calls == 1 and run.usage.output_tokens == resp.usage.output_tokens > 0
    assert run.duration_ms > 0 and not run.HasField("error")
    assert abs(run.created_at.ToDatetime(UTC) - started) < timedelta(seconds=10)


async def test_a_stream_run_carries_its_id_in_the_header_and_the_result_event(inference_mesh) -> None:
    async with inference_mesh(sim(*RULES), services=SERVICES) as m:
        call = jpb_grpc.JudgeServiceStub(m.channel).EvaluateStream(iter([jpb.EvaluateStreamRequest(evaluate=QUESTION)]))
        events, err = await drain(call)
        assert err is None
        run_id = events[-1].result.run_id
        assert run_id and header(await call.initial_metadata()) == run_id
        run = await get(m.channel, run_id)
    assert (run.method, run.status) == ("EvaluateStream", pb.RUN_STATUS_SUCCEEDED)
    assert dict(run.request) == dict(run.request) | {"answer": "4"}
    assert run.result["run_id"] == run_id
    assert all("result" not in e for e in run.events)


async def test_store_false_runs_get_an_id_and_are_not_kept(inference_mesh) -> None:
    async with inference_mesh(sim(*RULES), services=SERVICES) as m:
        request = jpb.EvaluateRequest()
        request.CopyFrom(QUESTION)
        request.store = False
        resp = await jpb_grpc.JudgeServiceStub(m.channel).Evaluate(request)
        assert resp.run_id
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await get(m.channel, resp.run_id)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        request.store = True  # said explicitly: kept
        kept = await jpb_grpc.JudgeServiceStub(m.channel).Evaluate(request)
        assert (await get(m.channel, kept.run_id)).status == pb.RUN_STATUS_SUCCEEDED


async def test_a_failed_run_is_stored_with_its_error_and_its_id_in_the_trailer(inference_mesh) -> None:
    async with inference_mesh(sim(*RULES), services=SERVICES) as m:
        call = jpb_grpc.JudgeServiceStub(m.channel).Evaluate(
            jpb.EvaluateRequest(question="q?", answer="a", model="no-such-model"))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        run_id = header(err.value.trailing_metadata())
        run = await get(m.channel, run_id)
        # An invalid request is no run: nothing stored.
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await jpb_grpc.JudgeServiceStub(m.channel).Evaluate(jpb.EvaluateRequest(question="q?"))
        assert RUN_ID_HEADER not in dict(bad.value.trailing_metadata() or ())
        assert [r.run_id for r in (await listed(m.channel)).runs] == [run_id]
    assert run.status == pb.RUN_STATUS_FAILED and not run.HasField("result")
    assert run.error.code == grpc.StatusCode.NOT_FOUND.value[0] and "no-such-model" in run.error.message


async def test_a_cancelled_stream_is_stored_as_cancelled(inference_mesh) -> None:
    slow = (ScriptRule(match="Criterion:", response=VERDICT, fault="token_delay_ms=200"),)
    async with inference_mesh(sim(*slow), services=SERVICES) as m:
        queue: asyncio.Queue[jpb.EvaluateStreamRequest | None] = asyncio.Queue()

        async def requests() -> AsyncIterator[jpb.EvaluateStreamRequest]:
            while (item := await queue.get()) is not None:
                yield item

        call = jpb_grpc.JudgeServiceStub(m.channel).EvaluateStream(requests())
        await queue.put(jpb.EvaluateStreamRequest(evaluate=QUESTION))
        run_id = header(await call.initial_metadata())  # sent with the first reasoning delta
        await queue.put(jpb.EvaluateStreamRequest(cancel=common_pb2.Cancel(reason="enough")))
        _, err = await drain(call)
        assert err is not None and err.code() == grpc.StatusCode.CANCELLED
        run = await get(m.channel, run_id)
    assert run.status == pb.RUN_STATUS_CANCELLED and run.error.code == grpc.StatusCode.CANCELLED.value[0]
    assert "enough" in run.error.message
    assert run.events and "reasoning" in run.events[0]


# ---- listing and deleting -----------------------------------------------------------------------


async def test_listing_filters_and_pages(inference_mesh) -> None:
    async with inference_mesh(sim(*RULES, models=("m", "m2")), services=SERVICES) as m:
        judge, jury = jpb_grpc.JudgeServiceStub(m.channel), jurypb_grpc.JuryServiceStub(m.channel)
        ids = [(await judge.Evaluate(QUESTION)).run_id for _ in range(3)]
        panel = [jurypb.Juror(model="m2"), jurypb.Juror(model="m2", criterion="clarity")]
        jury_id = (await jury.Evaluate(jurypb.EvaluateRequest(question="2+2?", answer="4", panel=panel))).run_id
        newest_first = [jury_id, *reversed(ids)]
        assert [r.run_id for r in (await listed(m.channel)).runs] == newest_first
        assert [r.run_id for r in (await listed(m.channel, pattern="jury")).runs] == [jury_id]
        assert [r.run_id for r in (await listed(m.channel, model="m2")).runs] == [jury_id]
        assert (await listed(m.channel, status=pb.RUN_STATUS_FAILED)).runs == []
        assert all(not r.events for r in (await listed(m.channel)).runs)
        future = timestamp_pb2.Timestamp()
        future.FromDatetime(datetime.now(UTC) + timedelta(hours=1))
        assert (await listed(m.channel, created_after=future)).runs == []
        assert len((await listed(m.channel, created_before=future)).runs) == 4

        pages, token = [], ""
        while True:
            page = await listed(m.channel, page_size=3, page_token=token)
            pages.append([r.run_id for r in page.runs])
            token = page.next_page_token
            if not token:
                break
        assert pages == [newest_first[:3], newest_first[3:]]

        first = await listed(m.channel, page_size=1, pattern="judge")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await listed(m.channel, page_size=1, page_token=first.next_page_token)  # other filters
        assert "filters" in violations(err.value)["page_token"]
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await listed(m.channel, page_token="not-a-token", page_size=-1, pattern="ju\x00dge",
                         created_before=timestamp_pb2.Timestamp(seconds=2**62))
        assert violations(err.value) == {
            "page_token": "is not a page token of this listing",
            "page_size": "must be between 0 (the default 20) and 100",
            "pattern": "must not contain NUL characters",
            "created_before": "is not a time between the years 1 and 9999"}


async def test_deleting_a_run(inference_mesh) -> None:
    async with inference_mesh(sim(*RULES), services=SERVICES) as m:
        runs = pb_grpc.RunsServiceStub(m.channel)
        run_id = (await jpb_grpc.JudgeServiceStub(m.channel).Evaluate(QUESTION)).run_id
        await runs.DeleteRun(pb.DeleteRunRequest(run_id=run_id))
        for call in (runs.GetRun(pb.GetRunRequest(run_id=run_id)), runs.DeleteRun(pb.DeleteRunRequest(run_id=run_id))):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await call
            assert err.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await runs.GetRun(pb.GetRunRequest())
        assert violations(err.value) == {"run_id": "is required"}
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await runs.DeleteRun(pb.DeleteRunRequest(run_id="../etc"))
        assert violations(err.value) == {"run_id": "is not a run id (hex digits)"}


# ---- who sees what -------------------------------------------------------------------------------


async def test_a_key_sees_its_own_runs_and_runs_admin_sees_every_key(settings: Settings, registry: CollectorRegistry,
                                                                      tmp_path: Path) -> None:
    keys = write_keys(tmp_path / "keys.json", alice=KeySpec(("judge",)), bob=KeySpec(("judge",)),
                      auditor=KeySpec(("runs:admin",)))
    secured = dataclasses.replace(settings, auth=AuthSettings(str(tmp_path / "keys.json")))
    alice, bob, auditor = (bearer(keys[k]) for k in ("alice", "bob", "auditor"))
    async with inproc_mesh(secured, registry, sim(*RULES), services=SERVICES) as m:
        judge = jpb_grpc.JudgeServiceStub(m.channel)
        mine = (await judge.Evaluate(QUESTION, metadata=alice)).run_id
        theirs = (await judge.Evaluate(QUESTION, metadata=bob)).run_id
        # A judge-only key reads its own runs: RunsService needs no scope of its own.
        assert (await get(m.channel, mine, alice)).principal == "alice"
        assert [r.run_id for r in (await listed(m.channel, alice)).runs] == [mine]
        for call in (get(m.channel, theirs, alice),
                     pb_grpc.RunsServiceStub(m.channel).DeleteRun(pb.DeleteRunRequest(run_id=theirs), metadata=alice)):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await call
            assert err.value.code() == grpc.StatusCode.NOT_FOUND  # as if it did not exist
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await listed(m.channel, alice, principal="bob")
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert [r.run_id for r in (await listed(m.channel, alice, principal="alice")).runs] == [mine]
        # runs:admin: every key's runs, and a filter by key.
        assert {r.run_id for r in (await listed(m.channel, auditor)).runs} == {mine, theirs}
        assert [r.run_id for r in (await listed(m.channel, auditor, principal="bob")).runs] == [theirs]
        assert (await get(m.channel, theirs, auditor)).principal == "bob"
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await listed(m.channel)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_concurrent_runs_are_all_stored(inference_mesh) -> None:
    async with inference_mesh(sim(*RULES), services=SERVICES) as m:
        judge = jpb_grpc.JudgeServiceStub(m.channel)
        answered = await asyncio.gather(*(judge.Evaluate(QUESTION) for _ in range(20)))
        assert len({r.run_id for r in answered}) == 20
        assert {r.run_id for r in (await listed(m.channel, page_size=100)).runs} == {r.run_id for r in answered}
