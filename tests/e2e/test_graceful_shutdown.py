"""Graceful shutdown under Envoy: SIGTERM makes the service report NOT_SERVING and stop accepting,
while a stream already flowing through the ingress runs to its `done` event with status OK.

This test owns its mesh (it kills the service process).
"""

from __future__ import annotations

import signal
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from llmmesh.common.v1 import common_pb2
from llmmesh.inference.v1 import inference_service_pb2 as pb
from llmmesh.inference.v1 import inference_service_pb2_grpc as pb_grpc
from tests.support.e2e import wait_until
from tests.support.mesh import running_mesh
from tests.support.streams import collapsed

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e_foundation")]

# 30 tokens (the simulator's default answer is 32) at 150 ms each: the stream outlives the 2 s
# drain delay by a wide margin.
TOKENS = 30
TOKEN_DELAY_MS = 150
DRAIN_DELAY_S = "2"


def _health(port: int) -> int:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        return health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=1).status


def _refuses_new_rpcs(port: int) -> bool:
    try:
        _health(port)
    except grpc.RpcError as exc:
        return exc.code() is grpc.StatusCode.UNAVAILABLE
    return False


def test_sigterm_drains_an_in_flight_stream(tmp_path: Path) -> None:
    with running_mesh(tmp_path / "mesh", backend="sim", service_env={"LLMMESH_DRAIN_DELAY_S": DRAIN_DELAY_S}) as mesh:
        opts = mesh.options
        sim = f"http://127.0.0.1:{opts.backend_port}"
        httpx.put(f"{sim}/_sim/faults", json={"spec": f"token_delay_ms={TOKEN_DELAY_MS}"}, timeout=10) \
            .raise_for_status()
        service = next(c for c in mesh.supervisor.children if c.name == "llmmesh")
        assert _health(opts.grpc_port) == health_pb2.HealthCheckResponse.SERVING

        with grpc.insecure_channel(mesh.ingress) as channel:
            request = pb.GenerateRequest(prompt="drain me", options=common_pb2.GenerationOptions(max_tokens=TOKENS))
            call = pb_grpc.InferenceServiceStub(channel).Generate(request, timeout=60)
            events = [next(call) for _ in range(3)]
            assert [e.WhichOneof("event") for e in events] == ["delta"] * 3

            service.proc.send_signal(signal.SIGTERM)
            # First the health service says NOT_SERVING (the drain delay: Envoy routes away)...
            wait_until(lambda: _health(opts.grpc_port) == health_pb2.HealthCheckResponse.NOT_SERVING, 10,
                       "the service port to report NOT_SERVING")
            # ...then the server stops accepting, while the generation is still running.
            wait_until(lambda: _refuses_new_rpcs(opts.grpc_port), 15, "the service to stop accepting RPCs")
            stats = httpx.get(f"{sim}/_sim/stats", timeout=10).json()
            assert stats["in_flight_generations"] == 1, stats

            events += list(call)
            assert call.code() is grpc.StatusCode.OK, call.details()

        kinds = [e.WhichOneof("event") for e in events]
        assert collapsed(kinds) == ["delta", "done"], kinds
        assert events[-1].done.output_tokens == TOKENS
        assert events[-1].done.backend == "sim"
        # And the process then exits on its own, cleanly.
        wait_until(lambda: service.proc.poll() is not None, 40, "the service process to exit")
        assert service.proc.returncode == 0, service.log_tail()
