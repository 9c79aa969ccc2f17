"""Drill: a client that reads a long generation slowly must not make the mesh buffer without bound.

The simulator streams 8192 tokens of ~7 KB each (~55 MB) at several MB/s; the gRPC client reads
ten tokens a second (a message may carry several: the relay coalesces what queued up behind a slow
reader, so the client paces itself by the tokens it got). With backpressure end to end, the
simulator's writes block once the windows and socket buffers between it and the client are full:
from then on the tokens it has written for the request grow no faster than the client reads, it
never reaches the end while the client dawdles, and no process on the path holds the difference in
memory.

Measured straight at the inference service's port, and through the ingress Envoy (whose HTTP/2
windows are kept small for this: with Envoy's default 256 MiB the answer piled up in the ingress
and in the inference process's gRPC send queue, +30 MB each, while the simulator ran 40 MB ahead).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest

from llmmesh.common.v1 import common_pb2
from llmmesh.inference.v1 import inference_service_pb2 as pb
from llmmesh.inference.v1 import inference_service_pb2_grpc as pb_grpc
from llmmesh.launcher.up import Mesh
from tests.chaos.drills import child, put_fault, put_scripts, rss_mb, sim_stats, sim_url
from tests.support.mesh import running_mesh

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.xdist_group("chaos_slow_client"),
              pytest.mark.timeout(120)]

TOKENS = 8192  # the inference service's maximum max_tokens
TOKEN_BYTES = 7000
TOTAL_MB = TOKENS * TOKEN_BYTES / 2**20
# A fast backend (~500-1000 tokens/s, several MB/s): left alone it would finish in ~10-15 s. Paced
# rather than instant, so that the kernel's loopback socket buffers are not autotuned to tens of MB
# by a first burst, which would hide the backpressure behind them.
BACKEND_FAULT = "token_delay_ms=1"
READ_INTERVAL_S = 0.1  # the client reads ten tokens a second
READ_FOR_S = 12.0
# By then the slack between the simulator and the client (HTTP/2 windows, socket buffers: a few MB)
# is full; from then on the simulator may advance only as the client reads…
MEASURE_FROM_S = 6.0
# …give or take the bursts in which the slack refills (~4 MB).
BURST_TOKENS = 600
# A process on the path may hold a few MB of frames in flight, not the answer (~55 MB).
RSS_GROWTH_LIMIT_MB = 16.0
PROMPT = "slow reader"


@pytest.fixture(scope="module")
def mesh(tmp_path_factory) -> Iterator[Mesh]:
    with running_mesh(tmp_path_factory.mktemp("slow-client"), backend="sim") as m:
        words = " ".join(f"{i:05d}" + "x" * (TOKEN_BYTES - 6) for i in range(TOKENS))
        asyncio.run(put_scripts(sim_url(m, "sim"), [{"match": PROMPT, "response": words}]))
        asyncio.run(put_fault(sim_url(m, "sim"), BACKEND_FAULT))
        yield m


@dataclass
class Sample:
    t: float
    read: int
    written: int  # frames the simulator has written for the request (its writes return)
    rss: dict[str, float]


async def slow_read(mesh: Mesh, target: str) -> list[Sample]:
    sim = sim_url(mesh, "sim")
    pids = {name: child(mesh, name).proc.pid for name in ("llmmesh", "envoy")}
    samples: list[Sample] = []
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.InferenceServiceStub(channel)
        call = stub.Generate(pb.GenerateRequest(prompt=PROMPT, options=common_pb2.GenerationOptions(
            max_tokens=TOKENS)), timeout=120)
        read = 0
        sampled = 0
        t0 = time.monotonic()
        samples.append(Sample(0.0, 0, 0, {n: rss_mb(p) for n, p in pids.items()}))
        try:
            async for ev in call:
                assert ev.WhichOneof("event") == "delta", ev
                tokens = max(1, round(len(ev.delta.text) / TOKEN_BYTES))
                read += tokens
                if read - sampled >= 5:
                    sampled = read
                    stats = await sim_stats(sim)
                    active = [a for a in stats["active"] if a["prompt_tail"].endswith(PROMPT)]
                    written = active[0]["frames"] if active else TOKENS + 1  # finished: all frames out
                    samples.append(Sample(time.monotonic() - t0, read, written,
                                          {n: rss_mb(p) for n, p in pids.items()}))
                if time.monotonic() - t0 > READ_FOR_S:
                    break
                await asyncio.sleep(READ_INTERVAL_S * tokens)
        finally:
            call.cancel()
    return samples


def check(samples: list[Sample], via: str) -> None:
    first = next(s for s in samples if s.t >= MEASURE_FROM_S)
    last = samples[-1]
    growth = {n: max(s.rss[n] for s in samples) - samples[0].rss[n] for n in samples[0].rss}
    print(f"\nslow client via {via}: the answer is {TOTAL_MB:.0f} MB; at {first.t:.1f}s the client had read "
          f"{first.read} tokens and the simulator written {first.written}; at {last.t:.1f}s {last.read} and "
          f"{last.written} ({(last.written - last.read) * TOKEN_BYTES / 2**20:.0f} MB ahead); RSS growth "
          + ", ".join(f"{n} {g:+.1f} MB" for n, g in growth.items()))
    # The backend never got to the end while the client dawdled…
    assert last.written < TOKENS, f"the simulator wrote all {TOKENS} tokens to a client that read {last.read}"
    # …because once the slack was full it advanced no faster than the client read.
    assert last.written - first.written <= last.read - first.read + BURST_TOKENS, (first, last)
    # And the inference process did not hold the difference.
    assert growth["llmmesh"] < RSS_GROWTH_LIMIT_MB, growth


async def test_slow_reader_at_the_inference_service_backpressures_the_backend(mesh: Mesh) -> None:
    check(await slow_read(mesh, f"127.0.0.1:{mesh.options.grpc_port}"), "the inference service")


async def test_slow_reader_through_the_ingress_backpressures_the_backend(mesh: Mesh) -> None:
    samples = await slow_read(mesh, mesh.ingress)
    check(samples, "the ingress")
    growth = max(s.rss["envoy"] for s in samples) - samples[0].rss["envoy"]
    assert growth < RSS_GROWTH_LIMIT_MB, growth
