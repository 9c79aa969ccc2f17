"""Soak, short version for CI: 45 s of steady mixed load (gRPC and REST streams, cancellations,
the OpenAI gateway, judge, jury, embeddings) through the ingress, with every process's RSS sampled
each second. After a 15 s warm-up no process may grow by more than a generous bound, and no request
may fail. ./scripts/soak runs the same for minutes and prints the table.
"""

from __future__ import annotations

import pytest

from tests.chaos.drills import sims_mesh
from tests.chaos.soak import run_soak

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.xdist_group("chaos_soak"), pytest.mark.timeout(180)]

DURATION_S = 45.0
WARMUP_S = 15.0
# Measured growth after the warm-up is under 1 MiB per process over a minute; a leak of one
# request's worth of state per request (thousands of requests here) would exceed this.
MAX_GROWTH_MB = 16.0


async def test_steady_mixed_load_keeps_every_process_memory_flat(tmp_path) -> None:
    with sims_mesh(tmp_path / "mesh", service_env={"LLMMESH_LOG_LEVEL": "WARNING"}) as mesh:
        # Paced so that the drill loads the mesh steadily without starving tests running beside it.
        result = await run_soak(mesh, DURATION_S, WARMUP_S, pace_s=0.1)
    print("\n" + result.table())

    assert not result.failed, result.failures
    assert sum(result.ok.values()) > 500, result.ok
    assert set(result.ok) == {"grpc generate", "grpc generate, cancelled", "rest chat", "rest sse generate",
                              "openai chat stream", "judge", "jury", "embed"}
    names = {p.name for p in result.processes}
    assert {"envoy", "llmmesh", "simulator-sim1", "simulator-sim2"} <= names  # llmmesh hosts the gateway
    for p in result.processes:
        assert len(p.after(WARMUP_S)) >= 20, (p.name, len(p.samples))
        assert p.growth_mb(WARMUP_S) < MAX_GROWTH_MB, result.table()
