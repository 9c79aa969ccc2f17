"""Failover in the engine, over a fake transport: a failure before the first token moves to
another backend; one mid-stream continues there from the text already delivered; attempts are
bounded; failures feed the breaker, which keeps a broken backend out until a trial succeeds; and a
cancelled generation closes its backend request without counting against the backend."""

from __future__ import annotations

import asyncio
from contextlib import aclosing

import pytest
from prometheus_client import CollectorRegistry

from llmmesh.common.model_call import Finished, GenerationEvent, ModelCall, Queued, Sampling, TextDelta
from llmmesh.framework.errors import Unavailable
from llmmesh.inference.breaker import Circuit, CircuitBreaker
from llmmesh.inference.engine import InferenceEngine
from llmmesh.inference.failures import BackendFailure
from tests.support.clock import FakeClock
from tests.support.fake_transport import FakeTransport, Hang, fake_engine, ollama_lines
from tests.support.sims import eventually

CALL = ModelCall("m", prompt="tell a story", sampling=Sampling(max_tokens=10))


def down(backend: str = "a") -> BackendFailure:
    return BackendFailure(backend, "HTTP 503: server busy", status=503)


async def generate(engine: InferenceEngine, call: ModelCall = CALL) -> list[GenerationEvent]:
    return [e async for e in engine.generate(call)]


def finished(events: list[GenerationEvent]):
    assert isinstance(events[-1], Finished) and sum(isinstance(e, Finished) for e in events) == 1
    return events[-1].stats


def preferring_a(transport: FakeTransport, **settings) -> InferenceEngine:
    """Backends a and b; a has the model loaded, so it is tried first."""
    engine = fake_engine(transport, "a", "b", **settings)
    engine.pool.backends[0].loaded = {"m"}
    return engine


async def test_a_failure_before_the_first_token_retries_on_another_backend() -> None:
    registry = CollectorRegistry()
    transport = FakeTransport(streams={"a": [[down()]], "b": [ollama_lines("Once", " upon")]})
    engine = preferring_a(transport, registry=registry)
    events = await generate(engine)
    stats = finished(events)
    assert events[:2] == [TextDelta("Once"), TextDelta(" upon")]
    assert (stats.backend, stats.failed_over, stats.attempts, stats.backends) == ("b", True, 2, ("a", "b"))
    assert transport.bodies("b")[0] == transport.bodies("a")[0]  # the same request, nothing delivered yet
    assert registry.get_sample_value("llmmesh_inference_failovers_total", {"model": "m", "backend": "a"}) == 1
    assert engine.pool.backends[0].last_error == "HTTP 503: server busy"


async def test_a_failure_mid_stream_continues_elsewhere_from_the_delivered_text() -> None:
    transport = FakeTransport(streams={"a": [[*ollama_lines("Once", " upon", " a")[:3], down()]],
                                       "b": [ollama_lines(" time", ".", output_tokens=40)]})
    events = await generate(preferring_a(transport))
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Once", " upon", " a", " time", "."]
    stats = finished(events)
    assert (stats.backend, stats.failed_over, stats.backends) == ("b", True, ("a", "b"))
    # Counted as delivered: b's own count misses the prefix it continued from.
    assert stats.output_tokens == 5
    continued = transport.bodies("b")[0]
    assert continued["messages"][-1] == {"role": "assistant", "content": "Once upon a"}
    assert continued["options"]["num_predict"] == 10 - 3  # the budget left, not the whole again


async def test_tokens_are_counted_not_deltas_when_a_continuation_joins_some() -> None:
    # b's first new text is whitespace only: the join holds it and sends it with the next word,
    # one delta of two tokens. The budget left and the final count go by tokens.
    transport = FakeTransport(streams={"a": [[*ollama_lines("Once", " upon", " a")[:3], down()],
                                             ollama_lines(".", output_tokens=40)],
                                       "b": [[*ollama_lines(" ", "time")[:2], down("b")]]})
    events = await generate(preferring_a(transport))
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Once", " upon", " a", " time", "."]
    stats = finished(events)
    assert (stats.backends, stats.output_tokens) == (("a", "b", "a"), 6)
    assert transport.bodies("a")[1]["options"]["num_predict"] == 10 - 5


async def test_with_every_other_backend_down_the_failed_one_is_tried_again() -> None:
    transport = FakeTransport(streams={"a": [[down()], ollama_lines("ok")]})
    engine = fake_engine(transport, "a")
    assert finished(await generate(engine)).backends == ("a", "a")


async def test_attempts_are_bounded_and_the_last_reason_is_reported_as_unavailable() -> None:
    transport = FakeTransport(streams={"a": [[*ollama_lines("x")[:1], down("a")]],
                                       "b": [[BackendFailure("b", "connection lost mid-stream")]]})
    engine = preferring_a(transport, max_attempts=3)
    delivered: list[GenerationEvent] = []
    with pytest.raises(Unavailable) as err:
        async for event in engine.generate(CALL):
            delivered.append(event)
    # a, then b, then a again (all others tried), continuing from what it had delivered: each
    # token reached the caller once per attempt that produced it, none is taken back.
    assert [s.backend for s in transport.sent] == ["a", "b", "a"]
    assert transport.bodies("a")[1]["messages"][-1] == {"role": "assistant", "content": "x"}
    assert delivered == [TextDelta("x"), TextDelta("x")] and err.value.retry_after_s > 0
    assert "3 attempts failed; last:" in err.value.message


async def test_repeated_failures_open_the_circuit_and_a_successful_trial_closes_it() -> None:
    clock = FakeClock()
    transport = FakeTransport(streams={"a": [[down()], [down()], ollama_lines("back")],
                                       "b": [ollama_lines("ok")]})
    engine = preferring_a(transport)
    a = engine.pool.backends[0]
    a.breaker = CircuitBreaker(2, 5.0, clock=clock)
    for _ in range(2):
        assert finished(await generate(engine)).backends == ("a", "b")
    assert a.breaker.state is Circuit.OPEN
    assert finished(await generate(engine)).backends == ("b",)  # a is left alone while open
    assert transport.streamed["a"] == 2
    clock.advance(5.0)
    assert a.breaker.state is Circuit.HALF_OPEN
    assert finished(await generate(engine)).backends == ("a",)  # the trial
    assert a.breaker.state is Circuit.CLOSED


async def test_a_cancelled_generation_closes_the_backend_request_and_judges_nothing() -> None:
    clock = FakeClock()
    transport = FakeTransport(streams={"a": [[*ollama_lines("x")[:1], Hang()]]})
    engine = fake_engine(transport, "a")
    a = engine.pool.backends[0]
    a.breaker = CircuitBreaker(1, 5.0, clock=clock)
    a.breaker.on_failure()
    clock.advance(5.0)  # half-open: this generation is the trial

    async def consume(first: asyncio.Event) -> None:
        async with aclosing(engine.generate(CALL)) as events:
            async for _ in events:
                first.set()

    first = asyncio.Event()
    task = asyncio.create_task(consume(first))
    await asyncio.wait_for(first.wait(), 5)
    assert transport.open_streams == 1 and not a.breaker.allows()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert transport.open_streams == 0 and a.in_flight == 0
    # Abandoned, not failed: the circuit stays half-open with its trial slot free again.
    assert a.breaker.state is Circuit.HALF_OPEN and a.breaker.allows()


async def test_a_mid_stream_failover_to_a_full_backend_waits_at_the_head_of_the_queue_and_completes() -> None:
    # b is full (capacity 1) with a stream that lasts until its caller leaves; a fails mid-stream.
    transport = FakeTransport(streams={"a": [[*ollama_lines("Once", " upon")[:2], down()], ollama_lines("x")],
                                       "b": [[*ollama_lines("busy")[:1], Hang()], ollama_lines(" a", " time")]})
    engine = fake_engine(transport, "a", "b", max_inflight_per_backend=1)
    engine.pool.backends[1].loaded = {"m"}  # the first generation goes to b
    a, b = engine.pool.backends

    async def consume(events: list[GenerationEvent], started: asyncio.Event) -> None:
        async with aclosing(engine.generate(CALL)) as stream:
            async for event in stream:
                events.append(event)
                started.set()

    occupying: list[GenerationEvent] = []
    occupied = asyncio.Event()
    holder = asyncio.create_task(consume(occupying, occupied))
    await asyncio.wait_for(occupied.wait(), 5)
    moved: list[GenerationEvent] = []
    mover = asyncio.create_task(consume(moved, asyncio.Event()))
    await eventually(lambda: engine.admission.waiting("m") == 1)
    # The continuation waits for b: a is free again, but it just failed this stream.
    assert a.in_flight == 0 and b.in_flight == 1
    holder.cancel()  # b frees its slot: the continuation gets it
    await asyncio.wait_for(mover, 5)
    assert [e.text for e in moved if isinstance(e, TextDelta)] == ["Once", " upon", " a", " time"]
    assert not any(isinstance(e, Queued) for e in moved)  # nothing but tokens once tokens flowed
    stats = finished(moved)
    assert stats.backends == ("a", "b") and stats.queue_wait_ms > 0
    assert transport.bodies("b")[1]["messages"][-1] == {"role": "assistant", "content": "Once upon"}
    assert a.in_flight == b.in_flight == 0
