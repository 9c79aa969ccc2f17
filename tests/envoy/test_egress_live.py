"""The rendered egress in front of two tiny Ollama-like HTTP backends, through the real Envoy binary."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from llmmesh.common.backends import BACKEND_HEADER
from llmmesh.topology.description import Shape
from llmmesh.topology.params import Backend
from llmmesh.topology.presets import local_params
from llmmesh.topology.render import render_yaml
from tests.support.envoy_proc import EnvoyProcess, start_envoy
from tests.support.ports import free_port

pytestmark = pytest.mark.e2e


class FakeOllama(ThreadingHTTPServer):
    def __init__(self, name: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.name = name
        # Status of /api/tags, i.e. what Envoy's health check sees.
        self.tags_status = 200

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_port}"


class _Handler(BaseHTTPRequestHandler):
    server: FakeOllama

    def do_GET(self) -> None:
        if self.path == "/api/tags":
            self._reply(self.server.tags_status, {"models": [{"name": "tiny"}]})
        else:
            self._reply(404, {"error": "not found"})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        if self.path == "/api/generate":
            pinned = self.headers.get(BACKEND_HEADER)
            self._reply(200, {"backend": self.server.name, "pin_header_seen": pinned, "done": True})
        else:
            self._reply(404, {"error": "not found"})

    def _reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@dataclass
class Egress:
    envoy: EnvoyProcess
    url: str
    a: FakeOllama
    b: FakeOllama


@pytest.fixture(scope="module")
def egress(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Egress]:
    a, b = FakeOllama("a"), FakeOllama("b")
    for server in (a, b):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    work = tmp_path_factory.mktemp("egress")
    egress_port = free_port()
    params = local_params(
        Shape.MONOLITH,
        [Backend("a", "127.0.0.1", a.server_port), Backend("b", "127.0.0.1", b.server_port)],
        monolith_port=free_port(),  # nothing listens: the ingress side is not under test here
        ingress_port=free_port(),
        admin_port=free_port(),
        egress_port=egress_port,
    )
    config = work / "envoy.yaml"
    config.write_text(render_yaml(params))
    envoy = start_envoy(config, log_dir=work)
    try:
        envoy.wait_healthy("backend_a", "backend_b")
        yield Egress(envoy, f"http://127.0.0.1:{egress_port}", a, b)
    finally:
        envoy.stop()
        print(f"envoy log tail ({envoy.log_path}):\n{envoy.logs()}")
        for server in (a, b):
            server.shutdown()
            server.server_close()


def generate(client: httpx.Client, backend: str | None = None) -> httpx.Response:
    headers = {BACKEND_HEADER: backend} if backend else {}
    return client.post("/api/generate", json={"model": "tiny", "prompt": "hi"}, headers=headers)


def served_by(client: httpx.Client, n: int, backend: str | None = None) -> list[str]:
    out = []
    for _ in range(n):
        resp = generate(client, backend)
        assert resp.status_code == 200, resp.text
        out.append(resp.json()["backend"])
    return out


def test_header_pins_the_backend_and_is_not_forwarded(egress: Egress) -> None:
    with httpx.Client(base_url=egress.url, timeout=10) as client:
        assert served_by(client, 10, "b") == ["b"] * 10
        assert served_by(client, 10, "a") == ["a"] * 10
        resp = generate(client, "b")
    assert resp.json()["pin_header_seen"] is None


def test_unknown_pinned_backend_is_rejected(egress: Egress) -> None:
    with httpx.Client(base_url=egress.url, timeout=10) as client:
        resp = generate(client, "nope")
    assert resp.status_code == 400
    assert "unknown or missing x-llmmesh-backend" in resp.text


def test_a_request_naming_no_backend_is_rejected(egress: Egress) -> None:
    # The inference service pins every request; an unpinned one is drift, never balanced blindly.
    with httpx.Client(base_url=egress.url, timeout=10) as client:
        resp = generate(client)
    assert resp.status_code == 400
    assert "unknown or missing x-llmmesh-backend" in resp.text


def test_failed_health_check_drains_the_backend_and_recovers(egress: Egress) -> None:
    envoy = egress.envoy
    with httpx.Client(base_url=egress.url, timeout=10) as client:
        _drain_and_recover(egress, envoy, client)


def _drain_and_recover(egress: Egress, envoy: EnvoyProcess, client: httpx.Client) -> None:
    egress.a.tags_status = 503
    try:
        envoy.wait_for(
            "backend a failing active health checks",
            lambda: "failed_active_hc" in envoy.health_flags("backend_a").get(egress.a.address, ""),
        )
        assert envoy.health_flags("backend_b")[egress.b.address] == "healthy"
        # Workers learn host health a moment after admin shows it. Pinned to a dead backend, the
        # request then fails fast (no panic routing), so the router can fail over.
        envoy.wait_for("pinned request to a refused", lambda: generate(client, "a").status_code == 503)
        assert "no healthy upstream" in generate(client, "a").text
        # The other backend is untouched: where the router fails over to, requests are served.
        assert served_by(client, 20, "b") == ["b"] * 20
    finally:
        egress.a.tags_status = 200
    envoy.wait_healthy("backend_a")
    envoy.wait_for("pinned request to a served again", lambda: generate(client, "a").status_code == 200)
    assert served_by(client, 5, "a") == ["a"] * 5


def test_cluster_stats_are_per_backend(egress: Egress) -> None:
    text = egress.envoy.admin("/stats/prometheus")
    for cluster in ("backend_a", "backend_b"):
        assert f'envoy_cluster_health_check_attempt{{envoy_cluster_name="{cluster}"}}' in text
    assert 'envoy_cluster_name="backends_pool"' not in text  # one cluster per backend, no pool
