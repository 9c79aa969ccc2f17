"""Rendered bootstraps: shape of the config, `envoy --mode validate`, and the committed examples."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from llmmesh.common.backends import Protocol as BackendProtocol
from llmmesh.common.backends import parse_backend
from llmmesh.topology.cli import main
from llmmesh.topology.description import MONOLITH_PORT, SERVICES, Shape
from llmmesh.topology.params import Backend, PlainHttpRoute, RenderParams
from llmmesh.topology.presets import CONTAINER_DESCRIPTOR, LOCAL_DESCRIPTOR, compose_params, local_params
from llmmesh.topology.render import EXAMPLES_DIR, compose_examples, render, render_yaml
from llmmesh_client import methods as sdk_methods
from tests.support.envoy_proc import ENVOY

BACKENDS = (Backend.parse("gpu1=http://127.0.0.1:11434"), Backend.parse("cpp=http://localhost:8080#openai"))
JUDGE_REPLICAS = {"judge": [("127.0.0.1", 50052), ("127.0.0.1", 50062)]}


def validate(config: dict | str, tmp_path: Path) -> None:
    path = tmp_path / "envoy.yaml"
    path.write_text(config if isinstance(config, str) else yaml.safe_dump(config))
    proc = subprocess.run(
        [ENVOY, "--mode", "validate", "-c", str(path), "--use-dynamic-base-id", "--log-level", "warn"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK" in proc.stdout + proc.stderr


def clusters(config: dict) -> dict[str, dict]:
    return {c["name"]: c for c in config["static_resources"]["clusters"]}


def hosts(cluster: dict) -> list[tuple[str, int]]:
    eps = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"]
    return [(e["endpoint"]["address"]["socket_address"]["address"],
             e["endpoint"]["address"]["socket_address"]["port_value"]) for e in eps]


def listener(config: dict, name: str) -> dict:
    (found,) = [lst for lst in config["static_resources"]["listeners"] if lst["name"] == name]
    return found


def hcm(config: dict, name: str) -> dict:
    return listener(config, name)["filter_chains"][0]["filters"][0]["typed_config"]


def routes(config: dict, name: str) -> list[dict]:
    return hcm(config, name)["route_config"]["virtual_hosts"][0]["routes"]


LOCAL = {
    "local-monolith": local_params(Shape.MONOLITH, BACKENDS),
    "local-microservices": local_params(Shape.MICROSERVICES, BACKENDS, replicas=JUDGE_REPLICAS),
}
# validate opens the descriptor, so the container path is swapped for the local file.
COMPOSE = {
    f"compose-{shape}": replace(compose_params(shape), descriptor_path=str(LOCAL_DESCRIPTOR)) for shape in Shape
}


@pytest.mark.parametrize("name", [*LOCAL, *COMPOSE])
def test_envoy_validates_rendered_config(name: str, tmp_path: Path) -> None:
    validate(render({**LOCAL, **COMPOSE}[name]), tmp_path)


def test_monolith_points_every_cluster_at_the_one_process() -> None:
    config = render(local_params(Shape.MONOLITH, monolith_port=6000))
    svc = {name: c for name, c in clusters(config).items() if name.startswith("svc_")}
    assert set(svc) == {f"svc_{s.name}" for s in SERVICES}
    for spec in SERVICES:
        cluster = svc[f"svc_{spec.name}"]
        assert hosts(cluster) == [("127.0.0.1", 6000)]
        assert cluster["type"] == "STATIC"
        assert cluster["lb_policy"] == "LEAST_REQUEST"
        (hc,) = cluster["health_checks"]
        assert hc["grpc_health_check"] == {"service_name": spec.grpc_service}
        assert hc["no_traffic_interval"] == hc["interval"]
        opts = cluster["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
        assert "http2_protocol_options" in opts["explicit_http_config"]
    # No backends: no egress listener and no backend clusters.
    assert [lst["name"] for lst in config["static_resources"]["listeners"]] == ["ingress"]


def test_microservices_use_each_service_port_and_replicas() -> None:
    config = render(local_params(Shape.MICROSERVICES, replicas=JUDGE_REPLICAS))
    by_name = clusters(config)
    assert hosts(by_name["svc_judge"]) == [("127.0.0.1", 50052), ("127.0.0.1", 50062)]
    for spec in SERVICES:
        if spec.name != "judge":
            assert hosts(by_name[f"svc_{spec.name}"]) == [("127.0.0.1", spec.port)]


def test_compose_uses_dns_names_and_binds_all_interfaces() -> None:
    micro = render(compose_params(Shape.MICROSERVICES))
    judge = clusters(micro)["svc_judge"]
    assert hosts(judge) == [("judge", 50052)]
    assert (judge["type"], judge["dns_lookup_family"]) == ("STRICT_DNS", "V4_ONLY")
    mono = render(compose_params(Shape.MONOLITH))
    assert {h for name, c in clusters(mono).items() if name.startswith("svc_") for h in hosts(c)} == {
        ("llmmesh", MONOLITH_PORT)
    }
    assert mono["admin"]["address"]["socket_address"]["address"] == "0.0.0.0"
    assert listener(mono, "ingress")["address"]["socket_address"]["address"] == "0.0.0.0"
    transcoder = hcm(mono, "ingress")["http_filters"][0]["typed_config"]
    assert transcoder["proto_descriptor"] == CONTAINER_DESCRIPTOR


def test_ingress_routes_services_then_health_and_reflection_then_404() -> None:
    params = local_params(Shape.MONOLITH)
    params = replace(params, plain_routes=(PlainHttpRoute("openai", "/v1/", (("127.0.0.1", 9000),)),))
    config = render(params)
    table = routes(config, "ingress")
    # Per service: its side-effect-free methods' exact paths, then its prefix (the first match wins).
    services = [m for s in SERVICES for m in (*({"path": f"/{s.grpc_service}/{name}"} for name in s.idempotent_methods),
                                              {"prefix": f"/{s.grpc_service}/"})]
    assert [r["match"] for r in table[: len(services)]] == services
    assert [r["match"]["prefix"] for r in table[len(services):]] == [
        "/grpc.health.v1.Health/",
        "/grpc.reflection.v1.ServerReflection/",
        "/grpc.reflection.v1alpha.ServerReflection/",
        "/v1/",
        "/",
    ]
    for r in table[: len(services) + 3]:
        assert r["route"]["timeout"] == "0s"
        assert r["route"]["retry_policy"]["num_retries"] == 3
    assert {r["route"]["cluster"] for r in table[len(services): len(services) + 3]} == {"svc_inference"}
    plain = table[-2]
    assert plain["route"]["cluster"] == "http_openai"
    assert plain["typed_per_filter_config"]["envoy.filters.http.grpc_json_transcoder"]["disabled"] is True
    assert table[-1]["direct_response"]["status"] == 404
    assert "http_openai" in clusters(config)


NEVER_SENT = ["connect-failure", "refused-stream", "reset-before-request"]


@pytest.mark.parametrize("shape", list(Shape))
def test_ingress_retries_only_what_never_reached_a_servicer_or_has_no_side_effects(shape: Shape) -> None:
    config = render(local_params(shape, replicas=JUDGE_REPLICAS if shape is Shape.MICROSERVICES else None))
    # The gRPC routes (the gateway's plain HTTP routes are http_*).
    by_name = {r["name"]: r["route"]["retry_policy"] for r in routes(config, "ingress")
               if "route" in r and not r["name"].startswith("http_")}
    # A pattern run a killed replica had started is not replayed: only requests that never reached
    # a servicer. Never gRPC UNAVAILABLE either: services answer it after real work.
    for s in SERVICES:
        assert by_name[s.grpc_service]["retry_on"].split(",") == NEVER_SENT, s.name
        for method in s.idempotent_methods:
            assert by_name[f"{s.grpc_service}/{method}"]["retry_on"].split(",") == [*NEVER_SENT, "reset"]
    for infra in ("grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"):
        assert by_name[infra]["retry_on"].split(",") == [*NEVER_SENT, "reset"]
    for policy in by_name.values():
        # Another replica each time, however often least-request picks the dead one.
        assert [p["name"] for p in policy["retry_host_predicate"]] == ["envoy.retry_host_predicates.previous_hosts"]
        assert policy["host_selection_retry_max_attempts"] == 10
    for name, cluster in clusters(config).items():
        if name.startswith("svc_"):
            # Every request may have a retry outstanding, not Envoy's default 3 per cluster; workers
            # see health changes at once (a replica back from a restart stands in right away).
            assert cluster["circuit_breakers"]["thresholds"] == [{"priority": "DEFAULT", "max_retries": 1024}]
            assert cluster["common_lb_config"] == {"update_merge_window": "0s"}


def test_the_ingress_and_the_sdk_agree_on_which_methods_are_idempotent() -> None:
    sdk = {(m.service, m.name) for m in sdk_methods.idempotent() if m.service != "grpc.health.v1.Health"}
    assert sdk == {(s.grpc_service, name) for s in SERVICES for name in s.idempotent_methods}


def test_transcoder_settings() -> None:
    transcoder = hcm(render(local_params(Shape.MONOLITH)), "ingress")["http_filters"][0]
    assert transcoder["name"] == "envoy.filters.http.grpc_json_transcoder"
    cfg = transcoder["typed_config"]
    assert cfg["services"] == [s.grpc_service for s in SERVICES]
    assert cfg["print_options"] == {
        "add_whitespace": False,
        "always_print_primitive_fields": True,
        "preserve_proto_field_names": True,
        "stream_sse_style_delimited": True,
    }
    assert cfg["convert_grpc_status"] is True
    assert cfg["request_validation_options"] == {
        "reject_unknown_method": True,
        "reject_unknown_query_parameters": True,
    }


def test_egress_routes_only_pinned_requests_one_cluster_per_backend_and_never_retries() -> None:
    config = render(local_params(Shape.MONOLITH, BACKENDS))
    table = routes(config, "egress")
    assert [r["route"]["cluster"] for r in table if "route" in r] == ["backend_gpu1", "backend_cpp"]
    assert table[0]["match"]["headers"] == [{"name": "x-llmmesh-backend", "string_match": {"exact": "gpu1"}}]
    # A request naming no backend, or one Envoy does not know, is refused: there is no pool to guess from.
    assert "headers" not in table[-1]["match"] and table[-1]["direct_response"]["status"] == 400
    assert all("retry_policy" not in r.get("route", {}) for r in table)
    assert all(r["route"]["timeout"] == "0s" for r in table if "route" in r)
    by_name = clusters(config)
    assert sorted(n for n in by_name if n.startswith("backend")) == ["backend_cpp", "backend_gpu1"]
    assert hosts(by_name["backend_gpu1"]) == [("127.0.0.1", 11434)]
    assert hosts(by_name["backend_cpp"]) == [("localhost", 8080)]
    assert by_name["backend_gpu1"]["type"] == "STATIC"
    assert by_name["backend_cpp"]["type"] == "STRICT_DNS"
    paths = {n: by_name[n]["health_checks"][0]["http_health_check"]["path"] for n in by_name if "backend" in n}
    assert paths == {"backend_gpu1": "/api/tags", "backend_cpp": "/v1/models"}
    outlier = by_name["backend_gpu1"]["outlier_detection"]
    assert (outlier["consecutive_5xx"], outlier["max_ejection_percent"]) == (3, 100)
    limits = by_name["backend_cpp"]["circuit_breakers"]["thresholds"][0]
    assert (limits["max_requests"], limits["max_pending_requests"]) == (256, 128)
    assert "response_headers_to_add" not in hcm(config, "egress")["route_config"]["virtual_hosts"][0]


def test_backend_parse_agrees_with_the_inference_service() -> None:
    assert Backend.parse("a=http://10.0.0.5:11434") == Backend("a", "10.0.0.5", 11434, BackendProtocol.OLLAMA)
    assert Backend.parse("b=http://gpu-b:8000#openai;models=x|y") == Backend("b", "gpu-b", 8000, BackendProtocol.OPENAI)
    for spec in ("http://10.0.0.7:11434", "GPU=http://gpu:11434#openai"):
        # The pin header carries the inference service's name for the backend: both must agree.
        assert Backend.parse(spec).name == parse_backend(spec).name
    for bad in ("a=https://u:secret@x:1", "a=http://x:1#grpc", "a b=http://x:1", "a=ftp://x:1"):
        with pytest.raises(ValueError):
            Backend.parse(bad)


def test_params_reject_inconsistent_input() -> None:
    base = local_params(Shape.MONOLITH)
    with pytest.raises(ValueError, match="no endpoints"):
        replace(base, service_endpoints={"judge": (("127.0.0.1", 1),)})
    with pytest.raises(ValueError, match="duplicate"):
        replace(base, backends=(Backend("a", "h", 1), Backend("a", "h", 2)))
    with pytest.raises(ValueError, match="ports"):
        replace(base, admin_port=base.ingress_port)
    with pytest.raises(ValueError, match="unknown service"):
        local_params(Shape.MICROSERVICES, replicas={"nope": [("h", 1)]})
    assert isinstance(base, RenderParams)


@pytest.mark.parametrize("name", sorted(compose_examples()))
def test_committed_compose_examples_do_not_drift(name: str) -> None:
    committed = (EXAMPLES_DIR / name).read_text()
    assert committed == compose_examples()[name], f"run `llmmesh-envoy --write-compose-examples` ({name} drifted)"
    assert committed.startswith("# ") and "llmmesh-envoy --write-compose-examples" in committed.splitlines()[1]


def test_cli_writes_a_valid_microservices_config(tmp_path: Path) -> None:
    out = tmp_path / "cli.yaml"
    rc = main([
        "--shape", "microservices",
        "--backend", "a=http://127.0.0.1:11434",
        "--backend", "b=http://127.0.0.1:11435#openai",
        "--replicas", "judge=127.0.0.1:50052,127.0.0.1:50062",
        "--ingress-port", "18080", "--admin-port", "19901", "--egress-port", "21500",
        "--out", str(out),
    ])
    assert rc == 0
    config = yaml.safe_load(out.read_text())
    assert listener(config, "ingress")["address"]["socket_address"]["port_value"] == 18080
    assert listener(config, "egress")["address"]["socket_address"]["port_value"] == 21500
    assert hosts(clusters(config)["svc_judge"]) == [("127.0.0.1", 50052), ("127.0.0.1", 50062)]
    assert hosts(clusters(config)["backend_b"]) == [("127.0.0.1", 11435)]
    validate(out.read_text(), tmp_path)


def test_cli_compose_monolith_matches_the_committed_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--compose", "--shape", "monolith"]) == 0
    rendered = capsys.readouterr().out
    assert rendered == render_yaml(compose_params(Shape.MONOLITH))
    assert (EXAMPLES_DIR / "compose-monolith.yaml").read_text().endswith(rendered)


def test_cli_rejects_a_bad_backend(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--backend", "a=https://user:secret@x:1"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "no credentials or query in the URL" in err and "secret" not in err
