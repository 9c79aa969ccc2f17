"""The rendered monolith ingress in front of a real grpc.aio server, through the real Envoy binary."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import httpx
import pytest
import pytest_asyncio

from llmmesh.topology.description import HEALTH_SERVICE, SERVICES, Shape
from llmmesh.topology.params import PlainHttpRoute
from llmmesh.topology.presets import local_params
from llmmesh.topology.render import render_yaml
from tests.envoy.fake_mesh import start_fake_mesh
from tests.support.envoy_proc import EnvoyProcess, start_envoy
from tests.support.ports import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

GRPCURL = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "grpcurl")


class _PlainHandler(BaseHTTPRequestHandler):
    """Stands in for a future plain-HTTP route (OpenAI front door)."""

    def do_GET(self) -> None:
        body = json.dumps({"plain": self.path}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@dataclass
class Mesh:
    envoy: EnvoyProcess
    ingress: str
    ingress_url: str


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def mesh(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Mesh]:
    plain = ThreadingHTTPServer(("127.0.0.1", 0), _PlainHandler)
    threading.Thread(target=plain.serve_forever, daemon=True).start()
    server, port = await start_fake_mesh()
    work = tmp_path_factory.mktemp("ingress")
    ingress_port = free_port()
    params = local_params(
        Shape.MONOLITH, monolith_port=port, ingress_port=ingress_port, admin_port=free_port(),
        egress_port=free_port(),
    )
    params = replace(
        params, plain_routes=(PlainHttpRoute("plain", "/v1/", (("127.0.0.1", plain.server_port),)),)
    )
    config = work / "envoy.yaml"
    config.write_text(render_yaml(params))
    envoy = await asyncio.to_thread(start_envoy, config, log_dir=work)
    try:
        await asyncio.to_thread(envoy.wait_healthy, *(f"svc_{s.name}" for s in SERVICES))
        addr = f"127.0.0.1:{ingress_port}"
        yield Mesh(envoy, addr, f"http://{addr}")
    finally:
        envoy.stop()
        print(f"envoy log tail ({envoy.log_path}):\n{envoy.logs()}")  # shown when a test fails
        await server.stop(None)
        plain.shutdown()


async def grpcurl(*args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        GRPCURL, "-plaintext", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_every_cluster_health_checks_its_own_grpc_service(mesh: Mesh) -> None:
    clusters = await asyncio.to_thread(mesh.envoy.admin, "/clusters")
    for spec in SERVICES:
        flags = await asyncio.to_thread(mesh.envoy.health_flags, f"svc_{spec.name}")
        assert list(flags.values()) == ["healthy"], clusters
    stats = await asyncio.to_thread(mesh.envoy.admin, "/stats?filter=health_check.success")
    assert "cluster.svc_judge.health_check.success" in stats


async def test_grpcurl_lists_the_whole_mesh_through_envoy(mesh: Mesh) -> None:
    listed = set((await grpcurl(mesh.ingress, "list")).split())
    expected = {s.grpc_service for s in SERVICES} | {HEALTH_SERVICE, "grpc.reflection.v1alpha.ServerReflection"}
    assert expected <= listed
    described = await grpcurl(mesh.ingress, "describe", "llmmesh.judge.v1.JudgeService")
    assert "rpc EvaluateStream ( stream .llmmesh.judge.v1.EvaluateStreamRequest )" in described


async def test_grpc_health_check_passes_through(mesh: Mesh) -> None:
    out = await grpcurl("-d", '{"service":"llmmesh.jury.v1.JuryService"}', mesh.ingress, "grpc.health.v1.Health/Check")
    assert json.loads(out) == {"status": "SERVING"}


async def test_grpc_call_to_unknown_service_is_unimplemented(mesh: Mesh) -> None:
    async with grpc.aio.insecure_channel(mesh.ingress) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await channel.unary_unary("/foo.v1.BarService/Baz")(b"", timeout=10)
    assert err.value.code() is grpc.StatusCode.UNIMPLEMENTED
    # Native gRPC callers keep a plain message; only REST callers get JSON local replies.
    assert err.value.details() == "no route"


async def test_rest_get_is_transcoded(mesh: Mesh) -> None:
    async with httpx.AsyncClient(base_url=mesh.ingress_url, timeout=10) as client:
        resp = await client.get("/api/v1/inference/models")
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/json"
    # preserve_proto_field_names + always_print_primitive_fields.
    assert resp.json() == {
        "models": [{"name": "tiny", "backends": ["a"], "loaded_on": [], "aliases": [], "context_window": 0,
                    "native_tools": False, "routes": []}],
        "default_model": "tiny",
    }


async def test_rest_server_stream_is_sse_ending_with_done(mesh: Mesh) -> None:
    async with httpx.AsyncClient(base_url=mesh.ingress_url, timeout=10) as client:
        resp = await client.post("/api/v1/inference/generate", json={"prompt": "hello mesh"})
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "text/event-stream"
    assert resp.text.endswith("\n\n")
    frames = resp.text.removesuffix("\n\n").split("\n\n")
    assert all(f.startswith("data: ") for f in frames), resp.text
    events = [json.loads(f.removeprefix("data: ")) for f in frames]
    assert [e["delta"]["text"] for e in events[:-1]] == ["hello", "mesh"]
    assert events[-1]["done"]["done_reason"] == "stop"


async def test_unknown_rest_path_is_404_json(mesh: Mesh) -> None:
    async with httpx.AsyncClient(base_url=mesh.ingress_url, timeout=10) as client:
        for resp in (await client.get("/api/v1/nope"), await client.post("/nope", json={})):
            assert resp.status_code == 404
            assert resp.headers["content-type"] == "application/json"
            assert resp.json()["code"] == 5  # NOT_FOUND


async def test_plain_http_route_bypasses_the_transcoder(mesh: Mesh) -> None:
    async with httpx.AsyncClient(base_url=mesh.ingress_url, timeout=10) as client:
        resp = await client.get("/v1/models")
    assert resp.status_code == 200
    assert resp.json() == {"plain": "/v1/models"}


async def test_malformed_json_is_400_with_json_status(mesh: Mesh) -> None:
    async with httpx.AsyncClient(base_url=mesh.ingress_url, timeout=10) as client:
        resp = await client.post(
            "/api/v1/judge/evaluate", content=b"{not json", headers={"content-type": "application/json"}
        )
    assert resp.status_code == 400
    assert resp.headers["content-type"] == "application/json"
    body = resp.json()
    assert body["code"] == 3  # INVALID_ARGUMENT
    assert body["message"]


async def test_unknown_query_parameter_is_400(mesh: Mesh) -> None:
    async with httpx.AsyncClient(base_url=mesh.ingress_url, timeout=10) as client:
        resp = await client.get("/api/v1/inference/models", params={"bogus": "1"})
    assert resp.status_code == 400
    assert resp.json()["code"] == 3


async def test_unimplemented_method_maps_to_501_status_json(mesh: Mesh) -> None:
    async with httpx.AsyncClient(base_url=mesh.ingress_url, timeout=10) as client:
        registered = await client.post("/api/v1/judge/evaluate", json={})
        unregistered = await client.post("/api/v1/jury/evaluate", json={})
    for resp in (registered, unregistered):
        assert resp.status_code == 501
        assert resp.headers["content-type"] == "application/json"
    assert registered.json() == {"code": 12, "message": "Evaluate is not implemented here", "details": []}
    assert unregistered.json() == {"code": 12, "message": "Method not found!", "details": []}


async def test_error_after_first_sse_frame_just_ends_the_stream(mesh: Mesh) -> None:
    # Why every stream ends with an explicit done/error event: once a 200 and a frame went out over
    # HTTP/1.1, a later gRPC error leaves no trace in the SSE body.
    async with httpx.AsyncClient(base_url=mesh.ingress_url, timeout=10) as client:
        resp = await client.post("/api/v1/inference/generate", json={"prompt": "one fail two"})
    assert resp.status_code == 200
    assert resp.text == 'data: {"delta":{"text":"one","source":""}}\n\n'


async def test_rich_error_details_reach_rest_clients(mesh: Mesh) -> None:
    async with httpx.AsyncClient(base_url=mesh.ingress_url, timeout=10) as client:
        resp = await client.post("/api/v1/inference/embed", json={"inputs": []})
    assert resp.status_code == 400
    body = resp.json()
    assert body["code"] == 3
    assert body["message"] == "invalid request"
    (detail,) = body["details"]
    assert detail["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    # preserve_proto_field_names applies to details too: snake_case, not fieldViolations.
    assert detail["field_violations"] == [{"field": "inputs", "description": "must not be empty", "reason": ""}]


async def test_admin_serves_prometheus_metrics(mesh: Mesh) -> None:
    text = await asyncio.to_thread(mesh.envoy.admin, "/stats/prometheus")
    assert "# TYPE envoy_cluster_upstream_rq_total counter" in text
    assert 'envoy_cluster_upstream_rq_total{envoy_cluster_name="svc_inference"}' in text
