"""The gateway in the topology: its ingress routes (transcoder off, one health-checked cluster) in
both deployment shapes, its settings, and the launcher's wiring."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from llmmesh.gateway.app import create_app
from llmmesh.settings import GatewaySettings, SettingsError
from llmmesh.topology.cli import main
from llmmesh.topology.description import GATEWAY, HTTP_COMPONENTS, OLLAMA_PATHS, SERVICES, Shape
from llmmesh.topology.ingress import TRANSCODER
from llmmesh.topology.params import PlainHttpRoute, component_routes
from llmmesh.topology.presets import compose_params, local_params
from llmmesh.topology.render import EXAMPLES_DIR, render

pytestmark = pytest.mark.xdist_group("gateway_unit")


def ingress_routes(config: dict) -> list[dict]:
    (ingress,) = [lst for lst in config["static_resources"]["listeners"] if lst["name"] == "ingress"]
    hcm = ingress["filter_chains"][0]["filters"][0]["typed_config"]
    return hcm["route_config"]["virtual_hosts"][0]["routes"]


def clusters(config: dict) -> dict[str, dict]:
    return {c["name"]: c for c in config["static_resources"]["clusters"]}


def test_the_gateway_is_a_plain_http_component_not_a_grpc_service() -> None:
    assert GATEWAY in HTTP_COMPONENTS and GATEWAY.name not in {s.name for s in SERVICES}
    assert (GATEWAY.port, GATEWAY.prefixes, GATEWAY.health_path) == (8090, ("/v1/", "/playground", "/api/blobs/"),
                                                                     "/healthz")
    assert GATEWAY.paths == (*OLLAMA_PATHS, "/mcp")


def test_every_ollama_path_routed_to_the_gateway_is_answered_there() -> None:
    app = create_app(GatewaySettings(port=0))
    served = {r.resource.canonical for r in app.router.routes() if r.resource is not None}
    assert set(OLLAMA_PATHS) <= served and "/mcp" in served


def _match(route: dict) -> str:
    (kind, value), = route["match"].items()
    return f"{kind}:{value}"


@pytest.mark.parametrize("shape", list(Shape))
def test_local_config_routes_v1_playground_ollama_and_mcp_to_one_gateway_cluster(shape: Shape) -> None:
    config = render(local_params(shape, gateway_port=18090))
    routes = {_match(r): r for r in ingress_routes(config)}
    # The Ollama paths and /mcp are matched whole: /api/v1/... (REST by transcoding) is not the gateway's.
    expected = ["prefix:/v1/", "prefix:/playground", "prefix:/api/blobs/", *(f"path:{p}" for p in OLLAMA_PATHS),
                "path:/mcp"]
    assert [m for m, r in routes.items() if r.get("route", {}).get("cluster") == "http_gateway"] == expected
    for match in expected:
        route = routes[match]
        assert route["route"]["cluster"] == "http_gateway"
        assert route["route"]["timeout"] == "0s"  # streams
        assert route["typed_per_filter_config"][TRANSCODER]["disabled"] is True
        assert route["route"]["retry_policy"]["retry_on"] == "connect-failure,refused-stream"
    # Both come before the catch-all 404.
    assert ingress_routes(config)[-1]["match"]["prefix"] == "/"
    gateway = clusters(config)["http_gateway"]
    eps = gateway["load_assignment"]["endpoints"][0]["lb_endpoints"]
    assert [e["endpoint"]["address"]["socket_address"]["port_value"] for e in eps] == [18090]
    (hc,) = gateway["health_checks"]
    assert hc["http_health_check"]["path"] == "/healthz"
    assert "typed_extension_protocol_options" not in gateway  # HTTP/1.1 upstream
    assert sum(1 for name in clusters(config) if name.startswith("http_")) == 1


def test_the_gateway_can_be_left_out() -> None:
    config = render(local_params(Shape.MONOLITH, gateway_port=None))
    assert not [n for n in clusters(config) if n.startswith("http_")]
    assert main(["--gateway-port", "0", "--out", "/dev/null"]) == 0


@pytest.mark.parametrize("shape", list(Shape))
def test_compose_routes_to_the_gateway_container(shape: Shape) -> None:
    gateway = clusters(render(compose_params(shape)))["http_gateway"]
    (ep,) = gateway["load_assignment"]["endpoints"][0]["lb_endpoints"]
    assert ep["endpoint"]["address"]["socket_address"] == {"address": "gateway", "port_value": 8090}
    assert (gateway["type"], gateway["dns_lookup_family"]) == ("STRICT_DNS", "V4_ONLY")
    committed = (EXAMPLES_DIR / f"compose-{shape}.yaml").read_text()
    assert "http_gateway" in committed and "prefix: /playground" in committed


def test_routes_sharing_a_cluster_must_agree() -> None:
    routes = component_routes(GATEWAY, (("127.0.0.1", 1),))
    assert [r.name for r in routes][:4] == ["gateway-v1", "gateway-playground", "gateway-api-blobs", "gateway-api-chat"]
    assert [(r.prefix, r.exact) for r in routes][-1] == ("/mcp", True)
    assert {r.cluster_name for r in routes} == {"http_gateway"}
    other = PlainHttpRoute("x", "/x/", (("127.0.0.1", 2),), cluster="gateway", health_path="/healthz")
    with pytest.raises(ValueError, match="disagree"):
        replace(local_params(Shape.MONOLITH), plain_routes=(*routes, other))
    with pytest.raises(ValueError):
        PlainHttpRoute("x", "/x/", (("h", 1),), health_path="healthz")


def test_gateway_settings_from_the_environment() -> None:
    assert GatewaySettings.from_env({}) == GatewaySettings()
    s = GatewaySettings.from_env({"LLMMESH_GATEWAY_PORT": "9999", "LLMMESH_INFERENCE_TARGET": "inference:50051",
                                  "LLMMESH_PLAYGROUND_API_URL": "http://mesh:8080/", "LLMMESH_HOST": "0.0.0.0",
                                  "LLMMESH_GATEWAY_TIMEOUT_S": "30"})
    assert (s.port, s.inference_target, s.playground_api_url, s.host, s.timeout_s) == (
        9999, "inference:50051", "http://mesh:8080", "0.0.0.0", 30.0)
    with pytest.raises(SettingsError, match="LLMMESH_GATEWAY_PORT"):
        GatewaySettings.from_env({"LLMMESH_GATEWAY_PORT": "http"})


def test_static_assets_ship_with_the_package() -> None:
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert '"llmmesh.gateway" = ["static/*"]' in pyproject
    assert 'llmmesh-gateway = "llmmesh.gateway.main:main"' in pyproject
