"""What `./scripts/up` hands the gateway and renders for Envoy, decided before anything starts:
the key file for /mcp, where /mcp runs the patterns in each shape, and the CORS origins."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmmesh.launcher.backend_choice import BackendChoice
from llmmesh.launcher.mesh_plan import envoy_params, gateway_env, plan_services
from llmmesh.launcher.options import UpOptions, parse_args
from llmmesh.settings import GatewaySettings
from llmmesh.topology.description import INTERNAL_PORT
from llmmesh.topology.render import render

CHOICE = BackendChoice("sim", ("http://127.0.0.1:11435",), "smollm2:135m")


def _listeners(opts: UpOptions) -> dict[str, dict]:
    config = render(envoy_params(opts, CHOICE, plan_services(opts), 8090))
    return {item["name"]: item for item in config["static_resources"]["listeners"]}


def test_api_keys_reach_the_gateway_without_the_service_key(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text("{}")
    opts = parse_args(["--api-keys", str(keys), "--state-dir", str(tmp_path)])
    env = gateway_env(opts, plan_services(opts), 8090)
    assert GatewaySettings.from_env(env).api_keys_file == str(keys.resolve())
    assert "LLMMESH_SERVICE_KEY_FILE" not in env
    assert "LLMMESH_API_KEYS_FILE" not in gateway_env(UpOptions(), plan_services(UpOptions()), 8090)


def test_microservices_run_the_patterns_through_envoys_internal_listener() -> None:
    opts = parse_args(["--shape", "microservices", "--internal-port", "18081"])
    settings = GatewaySettings.from_env(gateway_env(opts, plan_services(opts), 8090))
    assert settings.patterns_target == "127.0.0.1:18081"
    internal = _listeners(opts)["internal"]
    assert internal["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 18081}
    routes = internal["filter_chains"][0]["filters"][0]["typed_config"]["route_config"]["virtual_hosts"][0]["routes"]
    clusters = {r["route"]["cluster"] for r in routes if "route" in r}
    assert {"svc_judge", "svc_compare"} <= clusters and not any(c.startswith("http_") for c in clusters)
    # The monolith hosts every pattern on the inference target: no internal listener, no target.
    mono = parse_args([])
    assert mono.internal_port == INTERNAL_PORT
    assert GatewaySettings.from_env(gateway_env(mono, plan_services(mono), 8090)).patterns_target == ""
    assert "internal" not in _listeners(mono)


def test_cors_origins_come_from_the_flag_or_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMMESH_CORS_ORIGINS", "https://env.example")
    assert parse_args([]).cors_origins == ("https://env.example",)
    opts = parse_args(["--cors-origin", "https://App.example:443/", "--cors-origin", "http://localhost:3000"])
    assert opts.cors_origins == ("https://app.example", "http://localhost:3000")
    assert envoy_params(opts, CHOICE, plan_services(opts), 8090).cors_origins == opts.cors_origins
    monkeypatch.delenv("LLMMESH_CORS_ORIGINS")
    assert envoy_params(parse_args([]), CHOICE, plan_services(UpOptions()), 8090).cors_origins == ()
    with pytest.raises(SystemExit):
        parse_args(["--cors-origin", "https://*.example"])
