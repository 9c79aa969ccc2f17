"""Recording a run (bounded events, merged deltas, outcome) and the background writer: batches
written without the run waiting, a store that is down or slow costs runs (counted), never a run's
success; retention applied periodically."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from llmmesh.common.v1 import common_pb2
from llmmesh.framework.errors import Unavailable
from llmmesh.judge.v1 import judge_service_pb2 as pb
from llmmesh.patterns.model_client import UsageMeter
from llmmesh.runs.capture import RunCapture
from llmmesh.runs.log import RunLog
from llmmesh.runs.record import RunStatus
from llmmesh.runs.store import RunFilter
from llmmesh.settings import RunStoreSettings
from tests.support.ports import free_port
from tests.support.postgres import PostgresServer

REQUEST = pb.EvaluateRequest(question="2+2?", answer="4")


def delta(text: str, source: str = "") -> pb.EvaluateStreamResponse:
    return pb.EvaluateStreamResponse(reasoning=common_pb2.TokenDelta(text=text, source=source))


def order(order_: str) -> pb.EvaluateStreamResponse:
    return pb.EvaluateStreamResponse(order_verdict=pb.PairwiseOrder(order=order_, winner=pb.VERDICT_A))


def finished(run_id_suffix: str = "", **limits) -> RunCapture:
    run = RunCapture("judge", "Evaluate", REQUEST, "ci", **limits)
    run.succeeded(pb.EvaluateResponse(score=4, run_id=run.run_id + run_id_suffix), UsageMeter())
    return run


def lost(registry: CollectorRegistry, reason: str) -> float:
    return registry.get_sample_value("llmmesh_runs_lost_total", {"reason": reason}) or 0.0


# ---- recording ---------------------------------------------------------------------------------


def test_consecutive_deltas_of_one_source_are_merged() -> None:
    run = RunCapture("judge", "EvaluateStream", REQUEST, "ci")
    for event in (delta("Four "), delta("is "), delta("right.", "x"), order("a,b"), delta("again")):
        run.event(event)
    meter = UsageMeter()
    meter.models.update({"m": None})
    run.succeeded(pb.EvaluateResponse(score=5), meter)
    stored = run.record()
    assert stored.events == [{"reasoning": {"text": "Four is "}}, {"reasoning": {"text": "right.", "source": "x"}},
                             {"order_verdict": {"order": "a,b", "winner": "VERDICT_A"}},
                             {"reasoning": {"text": "again"}}]
    assert (stored.status, stored.result, stored.models) == (RunStatus.SUCCEEDED, {"score": 5.0}, ("m",))
    assert stored.request == {"question": "2+2?", "answer": "4"}


def test_events_past_the_caps_are_counted_and_marked() -> None:
    by_count = RunCapture("judge", "EvaluateStream", REQUEST, "", max_events=2)
    for o in ("1", "2", "3", "4"):
        by_count.event(order(o))
    by_count.failed(Unavailable("backend gone"), UsageMeter())
    stored = by_count.record()
    assert [next(iter(e)) for e in stored.events] == ["order_verdict", "order_verdict", "truncated"]
    assert stored.events[-1] == {"truncated": {"events_dropped": 2}} and stored.events_dropped == 2
    assert (stored.status, stored.error_code, stored.error_message) == (RunStatus.FAILED, 14, "backend gone")

    by_bytes = RunCapture("judge", "EvaluateStream", REQUEST, "", max_event_bytes=10)
    for text in ("12345", "67890", "X"):  # merged into one delta until the bytes run out
        by_bytes.event(delta(text))
    by_bytes.failed(asyncio.CancelledError(), UsageMeter())
    stored = by_bytes.record()
    assert stored.events == [{"reasoning": {"text": "1234567890"}}, {"truncated": {"events_dropped": 1}}]
    assert (stored.status, stored.error_code) == (RunStatus.CANCELLED, 1)


# ---- the writer --------------------------------------------------------------------------------


async def test_runs_are_written_in_batches_and_flush_waits_for_them(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    log = RunLog(RunStoreSettings(state_dir=str(tmp_path)), registry)
    await log.start()
    try:
        runs = [finished() for _ in range(100)]
        for run in runs:
            log.submit(run)
        await log.flush()
        stored = await (await log.store()).list(RunFilter(), 200)
        assert {r.run_id for r in stored} == {r.run_id for r in runs}
        assert registry.get_sample_value("llmmesh_runs_written_total") == 100
        not_kept = RunCapture("judge", "Evaluate", REQUEST, "", keep=False)
        not_kept.succeeded(pb.EvaluateResponse(), UsageMeter())
        log.submit(not_kept)
        await log.flush()
        assert await (await log.store()).get(not_kept.run_id) is None
    finally:
        await log.close()


async def test_a_database_that_is_down_loses_runs_counted_without_blocking(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"  # nothing listens there
    log = RunLog(RunStoreSettings(database_url=url, queue_size=3), registry)
    await log.start()
    try:
        started = time.perf_counter()
        for _ in range(5):
            log.submit(finished())
        assert time.perf_counter() - started < 0.5  # handing over never waits for the database
        assert lost(registry, "queue_full") == 2
        with pytest.raises(Unavailable):
            await log.store(wait_s=0.5)
    finally:
        await log.close(drain_s=0.1)
    assert lost(registry, "shutdown") == 3


async def test_a_database_lost_mid_way_costs_the_runs_it_was_writing() -> None:
    server = PostgresServer()
    server.start()
    registry = CollectorRegistry()
    log = RunLog(RunStoreSettings(database_url=server.url()), registry)
    try:
        await log.start()
        log.submit(first := finished())
        await log.flush()
        assert await (await log.store()).get(first.run_id) is not None
        server.stop()
        log.submit(finished())
        await log.flush()
        assert lost(registry, "write_failed") == 1
        assert registry.get_sample_value("llmmesh_runs_written_total") == 1
    finally:
        await log.close(drain_s=0.1)
        server.stop()


async def test_retention_is_applied_periodically(tmp_path: Path) -> None:
    settings = RunStoreSettings(state_dir=str(tmp_path), retention_count=3, prune_interval_s=1.0)
    log = RunLog(settings, CollectorRegistry())
    await log.start()
    try:
        for _ in range(6):
            log.submit(finished())
            await asyncio.sleep(0.002)  # distinct creation times
        await log.flush()
        store = await log.store()
        deadline = time.monotonic() + 5
        while len(await store.list(RunFilter(), 10)) > 3:
            assert time.monotonic() < deadline, "retention was never applied"
            await asyncio.sleep(0.1)
    finally:
        await log.close()
