"""Acceptance tests of the foundation: the whole monolith mesh as `./scripts/up --backend sim` runs
it (simulator, services, Envoy), called through the real Envoy binary with the real grpcurl and curl.

One mesh serves the whole module; no test here disturbs it. It is session-scoped so that, under
xdist, tests of other modules in the same group running in between do not restart it.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from llmmesh.launcher.up import Mesh
from llmmesh.topology.description import HEALTH_SERVICE, SERVICES
from tests.support.e2e import CURL, GRPCURL, curl, grpcurl, json_stream, split_http_response, sse_events, wait_until
from tests.support.mesh import running_mesh
from tests.support.streams import collapsed

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e_foundation")]

GENERATE = "llmmesh.inference.v1.InferenceService/Generate"
INFERENCE = "llmmesh.inference.v1.InferenceService"


@pytest.fixture(scope="session")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    with running_mesh(tmp_path_factory.mktemp("e2e-foundation"), backend="sim") as mesh:
        yield mesh


@pytest.fixture(scope="session")
def rest(mesh: Mesh) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://{mesh.ingress}", timeout=30) as client:
        yield client


def admin(mesh: Mesh, path: str) -> str:
    resp = httpx.get(f"http://127.0.0.1:{mesh.options.admin_port}{path}", timeout=10)
    resp.raise_for_status()
    return resp.text


def test_the_real_binaries_are_present() -> None:
    assert Path(GRPCURL).is_file(), GRPCURL
    assert CURL is not None and Path(CURL).is_file()


# --- gRPC through the ingress, with grpcurl ---------------------------------------------------


def test_grpcurl_lists_every_service_health_and_reflection(mesh: Mesh) -> None:
    out = grpcurl("-plaintext", mesh.ingress, "list")
    assert out.returncode == 0, out.stderr
    listed = set(out.stdout.split())
    ours = {name for name in listed if name.startswith("llmmesh.")}
    assert ours == {s.grpc_service for s in SERVICES}
    assert all(re.fullmatch(r"llmmesh\.\w+\.v1\.\w+Service", name) for name in ours)
    # Every service the protos define is in the topology and served: a new proto left out of
    # SERVICES (or a service whose process never registered it) fails here.
    assert ours == _proto_services()
    assert HEALTH_SERVICE in listed
    assert any(re.fullmatch(r"grpc\.reflection\.v1(alpha)?\.ServerReflection", name) for name in listed), listed


def _proto_services() -> set[str]:
    """`package.Service` of every service the repo's protos define."""
    out = set()
    for path in (Path(__file__).resolve().parents[2] / "proto" / "llmmesh").glob("*/v1/*.proto"):
        text = path.read_text()
        package = re.search(r"^package ([\w.]+);", text, re.M)
        assert package is not None, path
        out |= {f"{package.group(1)}.{name}" for name in re.findall(r"^service (\w+)", text, re.M)}
    return out


def _service_descriptor(grpc_service: str):  # -> google.protobuf.descriptor.ServiceDescriptor
    package, _, name = grpc_service.rpartition(".")
    short = package.split(".")[1]
    module = importlib.import_module(f"{package}.{short}_service_pb2")
    return module.DESCRIPTOR.services_by_name[name]


@pytest.mark.parametrize("spec", SERVICES, ids=[s.name for s in SERVICES])
def test_grpcurl_describes_each_service(mesh: Mesh, spec) -> None:
    out = grpcurl("-plaintext", mesh.ingress, "describe", spec.grpc_service)
    assert out.returncode == 0, out.stderr
    assert f"{spec.grpc_service} is a service:" in out.stdout
    methods = _service_descriptor(spec.grpc_service).methods
    assert methods
    for method in methods:
        assert f"rpc {method.name} (" in out.stdout, (method.name, out.stdout)
    # The REST face is part of the contract that reflection serves.
    assert f'"{spec.rest_prefix}/' in out.stdout


def test_grpcurl_generate_streams_five_deltas_then_done(mesh: Mesh) -> None:
    out = grpcurl("-plaintext", "-d", '{"prompt":"hi","options":{"max_tokens":5}}', mesh.ingress, GENERATE)
    assert out.returncode == 0, out.stderr
    events = json_stream(out.stdout)
    assert collapsed([next(iter(e)) for e in events]) == ["delta", "done"], events
    assert all(e["delta"]["text"].strip() for e in events[:-1])
    done = events[-1]["done"]
    assert done["backend"] == "sim"
    assert done["done_reason"] == "length"
    assert done["output_tokens"] == 5


# --- REST through transcoding -----------------------------------------------------------------


def test_curl_rest_generate_is_sse_ending_with_done(mesh: Mesh) -> None:
    out = curl("-sS", "-N", "-i", f"http://{mesh.ingress}/api/v1/inference/generate",
               "-d", '{"prompt": "Why is the sky blue?", "options": {"max_tokens": 4}}')
    assert out.returncode == 0, out.stderr
    status, headers, body = split_http_response(out.stdout)
    assert status == 200
    assert headers["content-type"] == "text/event-stream"
    events = sse_events(body)
    assert collapsed([next(iter(e)) for e in events]) == ["delta", "done"], body
    assert events[-1]["done"]["output_tokens"] == 4
    assert events[-1]["done"]["backend"] == "sim"


def test_curl_rest_complete_chat_is_sse_ending_with_done(mesh: Mesh) -> None:
    out = curl("-sS", "-N", "-i", f"http://{mesh.ingress}/api/v1/inference/complete-chat",
               "-d", '{"messages": [{"role": "ROLE_USER", "content": "Say hello"}], "options": {"max_tokens": 4}}')
    assert out.returncode == 0, out.stderr
    status, headers, body = split_http_response(out.stdout)
    assert status == 200 and headers["content-type"] == "text/event-stream"
    events = sse_events(body)
    assert {next(iter(e)) for e in events[:-1]} == {"delta"} and next(iter(events[-1])) == "done", body
    assert events[-1]["done"]["output_tokens"] == 4 and events[-1]["done"]["backend"] == "sim"


def test_curl_rest_models_is_json(mesh: Mesh) -> None:
    out = curl("-sS", "-i", f"http://{mesh.ingress}/api/v1/inference/models")
    assert out.returncode == 0, out.stderr
    status, headers, body = split_http_response(out.stdout)
    assert status == 200
    assert headers["content-type"] == "application/json"
    data = json.loads(body)
    names = [m["name"] for m in data["models"]]
    assert names, data
    assert data["default_model"] in names
    assert all(m["backends"] == ["sim"] for m in data["models"]), data


def test_curl_rest_backends_show_the_sim_healthy(mesh: Mesh) -> None:
    def sim_backend() -> dict:
        out = curl("-sS", "-i", f"http://{mesh.ingress}/api/v1/inference/backends")
        assert out.returncode == 0, out.stderr
        status, headers, body = split_http_response(out.stdout)
        assert (status, headers["content-type"]) == (200, "application/json"), body
        (backend,) = json.loads(body)["backends"]
        return backend if backend["health"] == "BACKEND_HEALTH_HEALTHY" else {}

    backend = wait_until(sim_backend, 15, "the sim backend to be reported healthy")
    assert backend["name"] == "sim"
    assert backend["url"] == f"http://127.0.0.1:{mesh.options.backend_port}"
    assert backend["protocol"] == "BACKEND_PROTOCOL_OLLAMA"
    assert backend["circuit"] == "CIRCUIT_STATE_CLOSED"
    assert backend["models"]


def test_curl_rest_chat_answers_whole(mesh: Mesh) -> None:
    out = curl("-sS", "-i", f"http://{mesh.ingress}/api/v1/inference/chat",
               "-d", '{"messages": [{"role": "ROLE_USER", "content": "Say hello"}], "options": {"max_tokens": 16}}')
    assert out.returncode == 0, out.stderr
    status, headers, body = split_http_response(out.stdout)
    assert status == 200, body
    assert headers["content-type"] == "application/json"
    data = json.loads(body)
    assert data["message"]["role"] == "ROLE_ASSISTANT"
    assert data["message"]["content"].strip()
    assert data["done"]["backend"] == "sim"
    assert 0 < data["done"]["output_tokens"] <= 16


# --- REST errors are JSON google.rpc.Status ---------------------------------------------------


def test_unknown_rest_path_is_404_json(rest: httpx.Client) -> None:
    resp = rest.get("/api/v1/no-such-thing")
    assert resp.status_code == 404
    assert resp.headers["content-type"] == "application/json"
    body = resp.json()
    assert body["code"] == 5  # NOT_FOUND
    assert body["message"]


def test_malformed_json_is_400_json(rest: httpx.Client) -> None:
    resp = rest.post("/api/v1/judge/evaluate", content=b'{"question": ', headers={"content-type": "application/json"})
    assert resp.status_code == 400
    assert resp.headers["content-type"] == "application/json"
    body = resp.json()
    assert body["code"] == 3  # INVALID_ARGUMENT
    assert body["message"]


def test_invalid_fields_are_400_with_field_violations(rest: httpx.Client) -> None:
    resp = rest.post("/api/v1/inference/generate", json={"prompt": "", "options": {"temperature": 9}})
    # A stream that fails before its first message has no reason to be a 200 SSE stream: REST
    # callers must get the HTTP status and the google.rpc.Status body, like for unary methods.
    assert resp.status_code == 400, (resp.headers.get("content-type"), resp.text)
    assert resp.headers["content-type"] == "application/json"
    body = resp.json()
    assert body["code"] == 3
    (detail,) = [d for d in body["details"] if d["@type"] == "type.googleapis.com/google.rpc.BadRequest"]
    # Envoy prints proto field names: snake_case `field_violations`, not `fieldViolations`.
    fields = {v["field"] for v in detail["field_violations"]}
    assert fields == {"prompt", "options.temperature"}


def test_legacy_judge_body_is_accepted_by_transcoding(rest: httpx.Client) -> None:
    legacy = {"question": "q", "answer": "a", "contexts": ["c"], "ground_truth": "g", "judge_type": "factual"}
    resp = rest.post("/api/v1/judge/evaluate", json=legacy)
    # 400 would mean the transcoder rejected the body the existing REST users send. Until the judge
    # lands (issue 4) the method answers 501 UNIMPLEMENTED; afterwards 200 with a verdict. Either
    # way the legacy body must get through.
    assert resp.status_code in (200, 501), (resp.status_code, resp.text)
    assert resp.headers["content-type"] == "application/json"
    body = resp.json()
    if resp.status_code == 501:
        assert body["code"] == 12  # UNIMPLEMENTED, as a JSON google.rpc.Status
        assert "message" in body
    else:
        assert {"score", "verdict", "judge"} <= body.keys(), body
        assert body["verdict"] and body["judge"]


# --- Envoy admin and metrics ------------------------------------------------------------------


def _health_flags(mesh: Mesh) -> dict[str, dict[str, str]]:
    """cluster -> {host: flags} from admin /clusters."""
    out: dict[str, dict[str, str]] = {}
    for line in admin(mesh, "/clusters").splitlines():
        cluster, _, rest = line.partition("::")
        host, _, tail = rest.partition("::")
        if tail.startswith("health_flags::"):
            out.setdefault(cluster, {})[host] = tail.removeprefix("health_flags::")
    return out


def test_envoy_reports_every_service_and_backend_cluster_healthy(mesh: Mesh) -> None:
    flags = _health_flags(mesh)
    services = {c for c in flags if c.startswith("svc_")}
    assert services == {f"svc_{s.name}" for s in SERVICES}
    service_host = f"127.0.0.1:{mesh.options.grpc_port}"
    for cluster in services:
        assert flags[cluster] == {service_host: "healthy"}, (cluster, flags[cluster])
    backend_host = f"127.0.0.1:{mesh.options.backend_port}"
    assert flags["backend_sim"] == {backend_host: "healthy"}
    backends = {c for c in flags if c.startswith("backend")}
    assert backends == {"backend_sim"}  # one cluster per backend, no pool
    for cluster in backends:
        assert set(flags[cluster].values()) == {"healthy"}, (cluster, flags[cluster])


def test_envoy_serves_prometheus_metrics(mesh: Mesh, rest: httpx.Client) -> None:
    assert rest.get("/api/v1/inference/models").status_code == 200
    text = admin(mesh, "/stats/prometheus")
    assert "# TYPE envoy_cluster_upstream_rq_total counter" in text
    line = re.search(r'^envoy_cluster_upstream_rq_total\{envoy_cluster_name="svc_inference"\} (\d+)', text, re.M)
    assert line and int(line.group(1)) >= 1, "no svc_inference upstream requests counted"


def _handled_generate(mesh: Mesh) -> float:
    text = httpx.get(f"http://127.0.0.1:{mesh.options.metrics_port}/metrics", timeout=10).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("grpc_server_handled_total{") and f'grpc_service="{INFERENCE}"' in line \
                and 'grpc_method="Generate"' in line and 'grpc_code="OK"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_service_metrics_count_handled_inference_rpcs(mesh: Mesh) -> None:
    before = _handled_generate(mesh)
    out = grpcurl("-plaintext", "-d", '{"prompt":"count me","options":{"max_tokens":2}}', mesh.ingress, GENERATE)
    assert out.returncode == 0, out.stderr
    after = wait_until(lambda: (v := _handled_generate(mesh)) > before and v, 10,
                       "grpc_server_handled_total for InferenceService/Generate to grow")
    assert after >= before + 1
