"""The Envoy config's security parts, rendered: the ingress marks what it forwards and strips the
service identity's header, optional TLS on the ingress listener, optional mutual TLS on every
service cluster (and none toward model backends), cross-origin access only for configured origins,
and Envoy itself accepts the result."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pytest
import yaml

from llmmesh.settings import IngressSettings, ServiceTlsSettings, SettingsError
from llmmesh.topology.cli import main
from llmmesh.topology.description import INGRESS_HEADER, ON_BEHALF_OF_HEADER, SERVICES, Shape
from llmmesh.topology.params import Backend, IngressTls
from llmmesh.topology.presets import Security, compose_params, local_params
from llmmesh.topology.render import EXAMPLES_DIR, compose_example_name, render
from tests.support.certs import make_certificates
from tests.support.envoy_proc import ENVOY

pytestmark = pytest.mark.xdist_group("security_render")

BACKEND = Backend.parse("a=http://127.0.0.1:11434")


def clusters(config: dict) -> dict[str, dict]:
    return {c["name"]: c for c in config["static_resources"]["clusters"]}


def ingress(config: dict) -> dict:
    return next(ln for ln in config["static_resources"]["listeners"] if ln["name"] == "ingress")


def test_the_ingress_marks_requests_and_strips_the_on_behalf_header() -> None:
    config = render(local_params(Shape.MONOLITH, [BACKEND]))
    hcm = ingress(config)["filter_chains"][0]["filters"][0]["typed_config"]
    (vhost,) = hcm["route_config"]["virtual_hosts"]
    added = {h["header"]["key"]: (h["header"]["value"], h["append_action"]) for h in vhost["request_headers_to_add"]}
    assert added[INGRESS_HEADER] == ("1", "OVERWRITE_IF_EXISTS_OR_ADD")  # a client cannot pre-set it
    assert vhost["request_headers_to_remove"] == [ON_BEHALF_OF_HEADER]
    # Off by default: no TLS anywhere.
    assert "transport_socket" not in ingress(config)["filter_chains"][0]
    assert not any("transport_socket" in c for c in clusters(config).values())


def test_tls_on_the_ingress_and_mutual_tls_to_every_service_but_not_the_backends() -> None:
    params = dataclasses.replace(
        local_params(Shape.MICROSERVICES, [BACKEND]),
        ingress_tls=IngressTls("/certs/ingress.pem", "/certs/ingress.key"),
        upstream_tls=ServiceTlsSettings("/certs/envoy.pem", "/certs/envoy.key", "/certs/ca.pem"))
    config = render(params)
    downstream = ingress(config)["filter_chains"][0]["transport_socket"]["typed_config"]
    assert downstream["@type"].endswith("DownstreamTlsContext")
    context = downstream["common_tls_context"]
    assert context["tls_certificates"] == [{"certificate_chain": {"filename": "/certs/ingress.pem"},
                                            "private_key": {"filename": "/certs/ingress.key"}}]
    assert context["alpn_protocols"] == ["h2", "http/1.1"]
    assert context["tls_params"]["tls_minimum_protocol_version"] == "TLSv1_2"
    by_name = clusters(config)
    for name, alpn in [*((f"svc_{s.name}", ["h2"]) for s in SERVICES), ("http_gateway", ["http/1.1"])]:
        upstream = by_name[name]["transport_socket"]["typed_config"]
        assert upstream["@type"].endswith("UpstreamTlsContext"), name
        ctx = upstream["common_tls_context"]
        assert ctx["validation_context"] == {"trusted_ca": {"filename": "/certs/ca.pem"}}
        assert ctx["tls_certificates"][0]["certificate_chain"] == {"filename": "/certs/envoy.pem"}
        assert ctx["alpn_protocols"] == alpn
        assert by_name[name]["health_checks"], name  # health checks ride the same socket
    assert "transport_socket" not in by_name["backend_a"]


def test_envoy_accepts_the_secured_config(tmp_path: Path) -> None:
    certs = make_certificates(tmp_path / "certs")
    out = tmp_path / "envoy.yaml"
    code = main(["--shape", "monolith", "--backend", "a=http://127.0.0.1:11434", "--out", str(out),
                        "--tls-cert", str(certs.path("server.pem")), "--tls-key", str(certs.path("server.key")),
                        "--mtls-ca", str(certs.path("ca.pem")), "--mtls-cert", str(certs.path("client.pem")),
                        "--mtls-key", str(certs.path("client.key"))])
    assert code == 0
    checked = subprocess.run([ENVOY, "--mode", "validate", "-c", str(out)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    with pytest.raises(SystemExit):
        main(["--tls-cert", str(certs.path("server.pem"))])  # the key is missing


# --- cross-origin access (CORS) --------------------------------------------------------------------

ORIGIN = "https://app.example.com"


def cors_parts(config: dict) -> tuple[list[str], dict | None]:
    """(names of the ingress' HTTP filters, the virtual host's CORS policy)."""
    hcm = ingress(config)["filter_chains"][0]["filters"][0]["typed_config"]
    (vhost,) = hcm["route_config"]["virtual_hosts"]
    policy = vhost.get("typed_per_filter_config", {}).get("envoy.filters.http.cors")
    return [f["name"] for f in hcm["http_filters"]], policy


def test_no_cross_origin_access_unless_origins_are_configured() -> None:
    filters, policy = cors_parts(render(local_params(Shape.MONOLITH, [BACKEND])))
    assert "envoy.filters.http.cors" not in filters and policy is None
    for shape in Shape:  # what compose and Kubernetes ship
        assert cors_parts(render(compose_params(shape)))[1] is None


def test_configured_origins_get_one_policy_for_every_route_and_preflights_go_no_further() -> None:
    params = dataclasses.replace(local_params(Shape.MONOLITH, [BACKEND]), cors_origins=(ORIGIN, "http://localhost:3000"))
    filters, policy = cors_parts(render(params))
    # First, so it answers preflights before the transcoder would reject OPTIONS as unknown.
    assert filters[0] == "envoy.filters.http.cors"
    assert policy is not None
    assert policy["allow_origin_string_match"] == [{"exact": ORIGIN}, {"exact": "http://localhost:3000"}]
    assert policy["forward_not_matching_preflights"] is False and policy["allow_credentials"] is False
    allowed = {h.strip() for h in policy["allow_headers"].split(",")}
    assert {"authorization", "content-type", "x-api-key"} <= allowed
    assert {m.strip() for m in policy["allow_methods"].split(",")} == {"GET", "POST", "DELETE"}
    # A page may read what the mesh answers with besides the body: the run's id above all.
    exposed = {h.strip() for h in policy["expose_headers"].split(",")}
    assert {"x-llmmesh-run-id", "x-request-id", "retry-after"} <= exposed
    # No route overrides it (the gateway's plain routes only switch the transcoder off).
    hcm = ingress(render(params))["filter_chains"][0]["filters"][0]["typed_config"]
    for route in hcm["route_config"]["virtual_hosts"][0]["routes"]:
        assert "envoy.filters.http.cors" not in route.get("typed_per_filter_config", {}), route["name"]


def test_origins_must_be_written_as_browsers_send_them() -> None:
    base = local_params(Shape.MONOLITH)
    for bad in ("https://App.example.com", "https://app.example.com/", "https://app.example.com:443", "*",
                "https://app.example.com/path"):
        with pytest.raises(ValueError):
            dataclasses.replace(base, cors_origins=(bad,))
    with pytest.raises(SettingsError, match="LLMMESH_CORS_ORIGINS"):
        IngressSettings.from_env({"LLMMESH_CORS_ORIGINS": "https://a.example, https://b.example/x"})
    # The setting writes them the browser's way.
    assert IngressSettings.from_env({"LLMMESH_CORS_ORIGINS": "HTTPS://App.Example.com:443/, http://h:8080"}) == (
        IngressSettings(("https://app.example.com", "http://h:8080")))


def test_cli_takes_origins_from_flags_or_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "envoy.yaml"
    monkeypatch.setenv("LLMMESH_CORS_ORIGINS", "http://from-env.example")
    assert main(["--out", str(out)]) == 0
    assert cors_parts(yaml.safe_load(out.read_text()))[1]["allow_origin_string_match"] == [
        {"exact": "http://from-env.example"}]
    assert main(["--cors-origin", "HTTPS://Flag.example:443", "--out", str(out)]) == 0
    assert cors_parts(yaml.safe_load(out.read_text()))[1]["allow_origin_string_match"] == [
        {"exact": "https://flag.example"}]
    checked = subprocess.run([ENVOY, "--mode", "validate", "-c", str(out)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    with pytest.raises(SystemExit):
        main(["--cors-origin", "https://x.example/path"])


def test_cli_secure_renders_the_committed_compose_configs(capsys: pytest.CaptureFixture[str]) -> None:
    """`--compose --secure` is what a site config (extra backends, CORS origins) starts from."""
    for security in (Security.TLS, Security.MTLS):
        for shape in Shape:
            assert main(["--compose", "--shape", str(shape), "--secure", str(security)]) == 0
            rendered = capsys.readouterr().out
            assert (EXAMPLES_DIR / compose_example_name(shape, security)).read_text().endswith(rendered)
    with pytest.raises(SystemExit):
        main(["--secure", "tls"])  # container paths: --compose only
