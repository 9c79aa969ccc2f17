"""Drill: SIGKILL one of two backends with 100 streams in flight, through the real Envoy
(ingress → inference → egress → two simulator processes).

Every stream must end explicitly within a bounded deadline: with `done` (the ones on the killed
backend continue on the survivor from the tokens already delivered) or with an explicit error
(event or status). A stream still open at its deadline counts as hung, and there must be none.
"""

from __future__ import annotations

import asyncio
import re
import signal

import grpc
import pytest

from llmmesh.common.v1 import common_pb2
from llmmesh.inference.v1 import inference_service_pb2 as pb
from llmmesh.inference.v1 import inference_service_pb2_grpc as pb_grpc
from tests.chaos.drills import (
    Tally,
    all_backends_ready,
    child,
    generate,
    put_fault,
    put_scripts,
    sim_stats,
    sim_url,
    sims_mesh,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.xdist_group("chaos_kill"), pytest.mark.timeout(180)]

STREAMS = 100
TOKENS = 96
TOKEN_DELAY_MS = 40  # ~3.8 s per stream: all 100 are mid-stream when the backend dies, even on a busy CI
STREAM_DEADLINE_S = 45.0
# Longer than max_tokens (unscripted answers have 32 words): every stream is cut at TOKENS words.
WORDS = [f"w{i}" for i in range(2 * TOKENS)]
SERVICE_ENV = {"LLMMESH_INVENTORY_REFRESH_S": "0.5", "LLMMESH_IDLE_TIMEOUT_S": "3", "LLMMESH_BACKOFF_S": "0.02"}


def read_once(text: str) -> bool:
    """The story's words, TOKENS in all, each delivered once. The simulators answer a continuation
    afresh (their `continuation` is "ignore"), so a stream continued after k words reads the story's
    first k words, then its first TOKENS - k again: a word lost or sent twice by the mesh, or a
    continuation not cut to the tokens left, reads otherwise. (Words, not messages: the relay joins
    the deltas queued behind a lagging reader; and the fresh answer's first word is glued to the last.)"""
    words = re.findall(r"w\d+", text)
    k = next((i for i in range(1, len(words)) if words[i] == WORDS[0]), len(words))
    return len(words) == TOKENS and words == WORDS[:k] + WORDS[:TOKENS - k]


# room: the survivor can take the victim's ~50 streams on top of its own ~50, so every stream
# finishes. saturated: a limit of 56 per backend leaves room for only ~6 of them; the rest wait at
# the head of the admission queue for the survivor's slots, and every stream still finishes.
@pytest.mark.parametrize("max_inflight", [128, 56], ids=["room", "saturated"])
async def test_100_streams_survive_a_killed_backend_with_none_hung(tmp_path, max_inflight: int) -> None:
    env = {**SERVICE_ENV, "LLMMESH_MAX_INFLIGHT_PER_BACKEND": str(max_inflight)}
    with sims_mesh(tmp_path / "mesh", service_env=env) as mesh:
        for name in ("sim1", "sim2"):
            await put_fault(sim_url(mesh, name), f"token_delay_ms={TOKEN_DELAY_MS}")
            await put_scripts(sim_url(mesh, name), [{"match": "story", "response": " ".join(WORDS)}])
        # Several channels, as many clients would: one HTTP/2 connection per 25 streams.
        channels = [grpc.aio.insecure_channel(mesh.ingress) for _ in range(4)]
        try:
            await all_backends_ready(channels[0])
            started = [asyncio.Event() for _ in range(STREAMS)]
            tasks = [asyncio.create_task(generate(
                pb_grpc.InferenceServiceStub(channels[i % len(channels)]),
                pb.GenerateRequest(prompt=f"story {i}", options=common_pb2.GenerationOptions(max_tokens=TOKENS)),
                STREAM_DEADLINE_S, started[i])) for i in range(STREAMS)]
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in started)), 30)
            survivor_load = (await sim_stats(sim_url(mesh, "sim1")))["in_flight_generations"]
            victim_load = (await sim_stats(sim_url(mesh, "sim2")))["in_flight_generations"]
            child(mesh, "simulator-sim2").proc.send_signal(signal.SIGKILL)
            tally = Tally(list(await asyncio.gather(*tasks)))
        finally:
            for ch in channels:
                await ch.close()

        loads = f"{victim_load} streams on the killed backend, {survivor_load} on the survivor"
        print(f"\nkill drill (max {max_inflight} per backend): {loads}; {tally.summary()}")
        kinds = tally.kinds()
        assert kinds["hung"] == 0, tally.summary()
        assert kinds["silent"] == 0, tally.summary()  # status OK without a terminal event
        assert all(o.explicit for o in tally.outcomes)
        assert victim_load > 0, "the killed backend had no stream in flight: the drill proved nothing"
        # Explicit errors are allowed, but only the documented retryable ones, with a message.
        errors = [o for o in tally.outcomes if o.kind != "done"]
        assert all(o.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED) and o.message
                   for o in errors), [(o.code, o.message) for o in errors]
        # Streams that finished got every token exactly once, failover or not.
        for o in tally.outcomes:
            if o.done is not None:
                assert o.done.output_tokens == TOKENS and read_once(o.text), (o.done, o.text)
        moved = tally.failed_over()
        assert moved, "no stream failed over"
        assert all(list(d.backends) == ["sim2", "sim1"] and d.backend == "sim1" for d in moved)
        # Every one of the victim's streams is continued on the survivor: at once with room there,
        # else after waiting for a slot, a started stream never ending for lack of one.
        assert kinds["done"] == STREAMS, tally.summary()
        if max_inflight < STREAMS:
            assert victim_load + survivor_load > max_inflight, loads
            assert any(d.queue_wait_ms > 0 for d in moved), "no continuation had to wait: the drill proved nothing"
        # (A stream of the victim's that ended in the instant before the kill needs no failover.)
        assert len(moved) <= victim_load, (len(moved), victim_load)
