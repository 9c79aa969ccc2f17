"""The whole mesh with every security feature on, as `./scripts/up --api-keys … --tls-cert … --mtls-…`
runs it, in the microservices shape (so pattern → inference crosses processes with the service
key and mutual TLS): REST and gRPC through the TLS ingress with 401/403/429 as documented, health
and reflection needing a key at the front door but not on a service's own port, metrics and
probes unreachable through the ingress, Envoy's health checks passing over mutual TLS, and
services refusing anyone without a certificate of the mesh's CA. Certificates are made here."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import httpx2
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from llmmesh.framework.auth import ON_BEHALF_OF
from llmmesh.judge.v1 import judge_service_pb2 as jpb
from llmmesh.judge.v1 import judge_service_pb2_grpc as jpb_grpc
from llmmesh.launcher.up import Mesh
from llmmesh.settings import ServiceTlsSettings
from llmmesh.topology.description import SERVICES, Shape
from llmmesh.topology.params import IngressTls
from llmmesh_client import LlmMesh, Tls
from tests.support.certs import Certificates, make_certificates, other_ca_certificates
from tests.support.e2e import grpcurl
from tests.support.keys import KeySpec, bearer, write_keys
from tests.support.mesh import running_mesh

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("security_mesh")]

TIMEOUT = 30
# A browser app allowed to call the ingress (`./scripts/up --cors-origin`).
ORIGIN = "https://app.example.com"


@dataclass
class Secured:
    mesh: Mesh
    certs: Certificates
    stranger: Certificates
    keys: dict[str, str]

    @property
    def base(self) -> str:
        return f"https://localhost:{self.mesh.options.ingress_port}"

    def http(self) -> httpx.Client:
        verify = ssl.create_default_context(cafile=str(self.certs.path("ca.pem")))
        return httpx.Client(base_url=self.base, verify=verify, timeout=TIMEOUT)

    def channel(self) -> grpc.Channel:
        creds = grpc.ssl_channel_credentials(self.certs.read("ca.pem"))
        return grpc.secure_channel(f"localhost:{self.mesh.options.ingress_port}", creds)

    def service_port(self, name: str) -> int:
        return next(p.port for p in self.mesh.plan if p.services == name)


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    work = Path(tmp_path_factory.mktemp("secured"))
    certs = make_certificates(work / "certs")
    stranger = other_ca_certificates(work / "stranger")
    keys = write_keys(
        work / "keys.json", judge=KeySpec(("judge",)), app=KeySpec(("inference",)), admin=KeySpec(("*",)),
        limited=KeySpec(("judge",), {"requests_per_second": 0.2, "burst": 2}),
        budget=KeySpec(("inference",), {"tokens_per_minute": 20}))
    server_pem, server_key = str(certs.path("server.pem")), str(certs.path("server.key"))
    with running_mesh(work / "state", backend="sim", shape=Shape.MICROSERVICES, api_keys_file=work / "keys.json",
                      ingress_tls=IngressTls(server_pem, server_key), cors_origins=(ORIGIN,),
                      service_tls=ServiceTlsSettings(server_pem, server_key, str(certs.path("ca.pem")))) as mesh:
        yield Secured(mesh, certs, stranger, keys)


def status_json(resp: httpx.Response) -> dict:
    assert resp.headers["content-type"].startswith("application/json"), resp.text
    return resp.json()


CHAT = {"messages": [{"role": "ROLE_USER", "content": "hi"}], "options": {"max_tokens": 4}}


def test_rest_over_tls_answers_401_403_and_200(secured: Secured) -> None:
    with secured.http() as http:
        missing = http.get("/api/v1/inference/models")
        assert missing.status_code == 401 and status_json(missing)["code"] == 16
        assert "missing API key" in status_json(missing)["message"]
        wrong = http.get("/api/v1/inference/models", headers={"authorization": "Bearer not-a-key"})
        assert wrong.status_code == 401
        scope = http.get("/api/v1/inference/models", headers={"authorization": f"Bearer {secured.keys['judge']}"})
        assert scope.status_code == 403 and status_json(scope)["code"] == 7
        ok = http.get("/api/v1/inference/models", headers={"x-api-key": secured.keys["app"]})
        assert ok.status_code == 200 and ok.json()["models"]
        chat = http.post("/api/v1/inference/chat", json=CHAT, headers=dict(bearer(secured.keys["app"])))
        assert chat.status_code == 200 and chat.json()["done"]["output_tokens"] == 4
    # The ingress speaks TLS only.
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://localhost:{secured.mesh.options.ingress_port}/api/v1/inference/models", timeout=5)


def test_a_judge_key_runs_the_judge_across_processes(secured: Secured) -> None:
    tls = Tls(root_certificates=secured.certs.read("ca.pem"))
    with LlmMesh(f"localhost:{secured.mesh.options.ingress_port}", tls=tls, api_key=secured.keys["judge"]) as client:
        result = client.judge.evaluate(question="What is 2+2?", answer="4", options={"max_tokens": 64})
    assert result.judge and result.usage.model_calls >= 1
    with secured.channel() as ch:
        judge = jpb_grpc.JudgeServiceStub(ch)
        request = jpb.EvaluateRequest(question="q", answer="a")
        with pytest.raises(grpc.RpcError) as err:
            judge.Evaluate(request, timeout=TIMEOUT)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as err:
            judge.Evaluate(request, metadata=bearer(secured.keys["app"]), timeout=TIMEOUT)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_health_and_reflection_need_a_key_at_the_front_door(secured: Secured) -> None:
    port = secured.mesh.options.ingress_port
    ca = str(secured.certs.path("ca.pem"))
    anonymous = grpcurl("-cacert", ca, f"localhost:{port}", "list")
    assert anonymous.returncode != 0 and "Unauthenticated" in anonymous.stderr
    listed = grpcurl("-cacert", ca, "-H", f"authorization: Bearer {secured.keys['judge']}", f"localhost:{port}", "list")
    assert listed.returncode == 0, listed.stderr
    assert {s.grpc_service for s in SERVICES} <= set(listed.stdout.split())
    with secured.channel() as ch:
        health = health_pb2_grpc.HealthStub(ch)
        with pytest.raises(grpc.RpcError) as err:
            health.Check(health_pb2.HealthCheckRequest(), timeout=TIMEOUT)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        ok = health.Check(health_pb2.HealthCheckRequest(), metadata=bearer(secured.keys["judge"]), timeout=TIMEOUT)
        assert ok.status == health_pb2.HealthCheckResponse.SERVING


def test_probes_and_metrics_stay_on_their_own_listeners(secured: Secured) -> None:
    with secured.http() as http:
        for path in ("/metrics", "/healthz", "/stats/prometheus", "/clusters", "/ready"):
            for headers in ({}, {"authorization": f"Bearer {secured.keys['admin']}"}):
                assert http.get(path, headers=headers).status_code == 404, path
    # A service's own port: health without a key, but only with a certificate of the mesh's CA.
    port = secured.service_port("judge")
    tls = ServiceTlsSettings(*(str(secured.certs.path(n)) for n in ("server.pem", "server.key", "ca.pem")))
    env = {**os.environ, "LLMMESH_TLS_CERT": tls.cert_file, "LLMMESH_TLS_KEY": tls.key_file,
           "LLMMESH_TLS_CA": tls.ca_file}
    probe = [sys.executable, "-m", "llmmesh.framework.healthcheck", "--port", str(port), "--service",
             "llmmesh.judge.v1.JudgeService"]
    ok = subprocess.run(probe, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert ok.returncode == 0 and "SERVING" in ok.stdout, ok.stderr
    without = {k: v for k, v in env.items() if not k.startswith("LLMMESH_TLS_")}
    assert subprocess.run(probe, env=without, capture_output=True, timeout=TIMEOUT).returncode == 1
    gateway = [sys.executable, "-m", "llmmesh.framework.healthcheck", "--port", str(secured.mesh.gateway_port),
               "--http", "/healthz"]
    assert subprocess.run(gateway, env=env, capture_output=True, timeout=TIMEOUT).returncode == 0
    # A certificate from another CA, or none at all, gets no answer from a service.
    for creds in (grpc.ssl_channel_credentials(secured.certs.read("ca.pem"), secured.stranger.read("client.key"),
                                               secured.stranger.read("client.pem")),
                  grpc.ssl_channel_credentials(secured.certs.read("ca.pem"))):
        with grpc.secure_channel(f"127.0.0.1:{port}", creds) as ch:
            with pytest.raises(grpc.RpcError) as err:
                health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_envoy_health_checks_the_services_over_mutual_tls(secured: Secured) -> None:
    admin = f"http://127.0.0.1:{secured.mesh.options.admin_port}"
    clusters = httpx.get(f"{admin}/clusters", timeout=TIMEOUT).text
    flags = [ln for ln in clusters.splitlines() if "::health_flags::" in ln and ln.startswith(("svc_", "http_"))]
    assert flags and all(ln.endswith("::healthy") for ln in flags), flags
    stats = dict(ln.split(": ", 1) for ln in httpx.get(f"{admin}/stats", timeout=TIMEOUT).text.splitlines()
                 if ": " in ln)
    for cluster in ("svc_judge", "svc_inference", "http_gateway"):
        assert int(stats[f"cluster.{cluster}.ssl.handshake"]) > 0, cluster
        assert int(stats.get(f"cluster.{cluster}.ssl.fail_verify_error", "0")) == 0
    assert int(stats["listener.127.0.0.1_" + str(secured.mesh.options.ingress_port) + ".ssl.handshake"]) > 0


def test_request_rate_over_rest_is_429_with_retry_info(secured: Secured) -> None:
    headers = {"authorization": f"Bearer {secured.keys['limited']}"}
    with secured.http() as http:
        answers = [http.get("/api/v1/judge/criteria", headers=headers) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    body = status_json(answers[2])
    assert body["code"] == 8
    by_type = {d["@type"].rsplit("/", 1)[1]: d for d in body["details"]}
    # Proto field names, as every REST body (the transcoder preserves them).
    assert float(by_type["google.rpc.RetryInfo"]["retry_delay"].rstrip("s")) > 1
    assert by_type["google.rpc.QuotaFailure"]["violations"][0]["subject"] == "key:limited"


def test_token_budget_over_rest_and_the_on_behalf_header_is_stripped(secured: Secured) -> None:
    with secured.http() as http:
        # Sent from outside, the service identity's header is removed at the ingress; if it reached
        # the service, a client key naming another key would be refused (see test_auth_inproc).
        spoof = {"authorization": f"Bearer {secured.keys['app']}", ON_BEHALF_OF: "budget"}
        assert http.post("/api/v1/inference/chat", json=CHAT, headers=spoof).status_code == 200
        headers = {"authorization": f"Bearer {secured.keys['budget']}"}
        statuses = [http.post("/api/v1/inference/chat", json=CHAT, headers=headers).status_code for _ in range(6)]
        assert statuses[0] == 200 and statuses[-1] == 429, statuses
        over = http.post("/api/v1/inference/chat", json=CHAT, headers=headers)
        violation = next(d for d in status_json(over)["details"] if d["@type"].endswith("QuotaFailure"))
        v = violation["violations"][0]
        assert (v["subject"], v["quota_id"], v["quota_value"]) == ("key:budget", "tokens_per_minute", "20")


def test_the_openai_gateway_forwards_keys_over_mutual_tls(secured: Secured) -> None:
    body = {"model": "smollm2:135m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}
    with secured.http() as http:
        denied = http.post("/v1/chat/completions", json=body)
        assert denied.status_code == 401 and denied.json()["error"]["code"] == "invalid_api_key"
        ok = http.post("/v1/chat/completions", json=body, headers={"authorization": f"Bearer {secured.keys['app']}"})
        assert ok.status_code == 200 and ok.json()["usage"]["completion_tokens"] == 3
        assert json.loads(http.get("/v1/models", headers={"x-api-key": secured.keys["app"]}).text)["data"]


def test_every_process_is_still_alive(secured: Secured) -> None:
    assert secured.mesh.supervisor.first_dead() is None
    assert (secured.mesh.options.state_dir / "service.key").stat().st_mode & 0o077 == 0


# --- the MCP server and CORS, as `up` wires them ------------------------------------------------


@asynccontextmanager
async def mcp_session(secured: Secured, key: str | None) -> AsyncIterator[Client]:
    verify = ssl.create_default_context(cafile=str(secured.certs.path("ca.pem")))
    headers = dict(bearer(secured.keys[key])) if key else {}
    async with httpx2.AsyncClient(headers=headers, verify=verify, timeout=60) as http, \
            Client(streamable_http_client(f"{secured.base}/mcp", http_client=http)) as client:
        yield client


async def test_mcp_checks_keys_and_runs_patterns_in_their_own_processes(secured: Secured) -> None:
    # The gateway got the key file from `up`: no key is a 401 before anything runs.
    with secured.http() as http:
        refused = http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                            headers={"accept": "application/json, text/event-stream"})
    assert refused.status_code == 401 and refused.json()["error"]["message"].startswith("missing API key")
    async with mcp_session(secured, "judge") as client:
        assert {t.name for t in (await client.list_tools()).tools} == {"judge"}
        # Microservices behind a TLS-only ingress: the judge process is reached through Envoy's
        # internal listener, over mutual TLS, with the caller's own key.
        result = await client.call_tool("judge", {"question": "What is 2+2?", "answer": "4",
                                                  "options": {"max_tokens": 64}})
    assert result.is_error is False, result.content
    assert result.structured_content["usage"]["model_calls"] >= 1  # type: ignore[index]
    async with mcp_session(secured, "admin") as client:
        assert {"judge", "jury", "compare"} <= {t.name for t in (await client.list_tools()).tools}


@pytest.mark.parametrize("path", ["/api/v1/judge/evaluate", "/v1/chat/completions", "/mcp"])
def test_a_preflight_from_an_allowed_origin_gets_the_cors_headers(secured: Secured, path: str) -> None:
    preflight = {"access-control-request-method": "POST",
                 "access-control-request-headers": "authorization,content-type"}
    with secured.http() as http:
        allowed = http.options(path, headers={"origin": ORIGIN, **preflight})
        other = http.options(path, headers={"origin": "https://evil.example", **preflight})
    assert allowed.status_code == 200, allowed.text
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-origin" not in other.headers


def test_a_page_on_an_allowed_origin_may_read_the_run_id_and_delete_runs(secured: Secured) -> None:
    with secured.http() as http:
        preflight = http.options("/api/v1/runs/some-run", headers={
            "origin": ORIGIN, "access-control-request-method": "DELETE",
            "access-control-request-headers": "authorization"})
        listed = http.get("/api/v1/runs", headers={"origin": ORIGIN,
                                                   "authorization": f"Bearer {secured.keys['admin']}"})
    assert preflight.status_code == 200 and "DELETE" in preflight.headers["access-control-allow-methods"]
    assert listed.status_code == 200, listed.text
    assert listed.headers["access-control-allow-origin"] == ORIGIN
    # Without this the browser hides the header from the page's script (the playground's History).
    exposed = {h.strip() for h in listed.headers["access-control-expose-headers"].split(",")}
    assert "x-llmmesh-run-id" in exposed
