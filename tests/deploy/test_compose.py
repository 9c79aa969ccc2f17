"""compose.yaml as Compose v2 itself resolves it (`docker compose config`, no engine needed),
checked against the topology description and the Envoy configs rendered from it; the Prometheus
scrape config and the Grafana provisioning that go with it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from llmmesh.framework.metrics import GrpcServerMetrics
from llmmesh.framework.shared_state import RedisMetrics
from llmmesh.inference.cache import CacheMetrics
from llmmesh.inference.metrics import InferenceMetrics
from llmmesh.patterns.presets import load as load_presets
from llmmesh.topology.description import (
    ADMIN_PORT,
    EGRESS_PORT,
    HTTP_COMPONENTS,
    INGRESS_PORT,
    MONOLITH_METRICS_PORT,
    MONOLITH_PORT,
    OLLAMA_PORT,
    SERVICES,
    Shape,
)
from llmmesh.topology.params import Backend
from llmmesh.topology.presets import COMPOSE_MONOLITH_HOST, CONTAINER_DESCRIPTOR
from tests.deploy.support import COMPOSE_FILE, DEPLOY, ROOT, compose_model, mounts, run_compose

PROFILES = [shape.value for shape in Shape]
ENVOY = {shape.value: f"envoy-{shape.value}" for shape in Shape}
BACKENDS = ("ollama1", "ollama2")
# Present in both profiles.
SHARED = {*BACKENDS, "ollama-pull", "prometheus", "grafana", "jaeger", "redis", "postgres",
          *(c.name for c in HTTP_COMPONENTS)}
HEALTH = "llmmesh.framework.healthcheck"


def envoy_config(model: dict, profile: str) -> dict:
    """The bootstrap the profile's Envoy container runs: the file bind-mounted at -c's path."""
    envoy = model["services"][ENVOY[profile]]
    command = envoy["command"]
    config_path = command[command.index("-c") + 1]
    source = Path(mounts(envoy)[config_path]["source"])
    return yaml.safe_load(source.read_text())


def clusters(config: dict) -> dict[str, list[tuple[str, int]]]:
    out = {}
    for c in config["static_resources"]["clusters"]:
        eps = c["load_assignment"]["endpoints"][0]["lb_endpoints"]
        out[c["name"]] = [(e["endpoint"]["address"]["socket_address"]["address"],
                           e["endpoint"]["address"]["socket_address"]["port_value"]) for e in eps]
    return out


def listener_port(config: dict, name: str) -> int:
    (lst,) = [lst for lst in config["static_resources"]["listeners"] if lst["name"] == name]
    return lst["address"]["socket_address"]["port_value"]


def healthcheck_args(service: dict) -> list[str]:
    test = service["healthcheck"]["test"]
    assert test[0] == "CMD" and test[1:4] == ["python", "-m", HEALTH], test
    return test[4:]


def flag(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


# --- Compose accepts the files ------------------------------------------------------------------


@pytest.mark.parametrize("cpu", [False, True], ids=["gpu", "cpu-override"])
@pytest.mark.parametrize("profile", PROFILES)
def test_compose_config_is_valid(profile: str, cpu: bool) -> None:
    model = compose_model(profile, cpu)
    llmmesh = {"llmmesh"} if profile == "monolith" else {s.name for s in SERVICES}
    assert set(model["services"]) == SHARED | llmmesh | {ENVOY[profile]}


def test_compose_rejects_what_it_should(tmp_path: Path) -> None:
    # The check has teeth: Compose validates against the spec (relative paths still resolve
    # against the repo: run_compose passes --project-directory).
    broken = COMPOSE_FILE.read_text().replace("    restart: unless-stopped\n", "    restart: unless-stopped\n"
                                               "    no_such_key: 1\n", 1)
    path = tmp_path / "compose.yaml"
    path.write_text(broken)
    done = run_compose("--profile", "monolith", "config", "-q", files=(path,))
    assert done.returncode != 0
    assert "no_such_key" in done.stderr


def test_profiles_are_exactly_the_shapes() -> None:
    done = run_compose("config", "--profiles")
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.split()) == sorted(PROFILES)


# --- agreement with the topology ----------------------------------------------------------------


def test_microservices_profile_has_one_container_per_topology_service() -> None:
    model = compose_model("microservices")
    inference = next(s for s in SERVICES if s.name == "inference")
    for spec in SERVICES:
        svc = model["services"][spec.name]
        env = svc["environment"]
        assert env["LLMMESH_SERVICES"] == spec.name
        assert (int(env["LLMMESH_PORT"]), int(env["LLMMESH_METRICS_PORT"])) == (spec.port, spec.metrics_port)
        assert env["LLMMESH_HOST"] == "0.0.0.0"
        assert env["LLMMESH_INFERENCE_TARGET"] == f"inference:{inference.port}"
        args = healthcheck_args(svc)
        assert (flag(args, "--port"), flag(args, "--service")) == (str(spec.port), spec.grpc_service)
        # Scalable (`--scale judge=3`): Envoy finds the replicas through DNS, so no fixed name
        # and no host port may pin one container.
        assert "container_name" not in svc and not svc.get("ports"), spec.name
        assert set(svc["networks"]) == {"mesh"}
        assert svc["profiles"] == ["microservices"]


def test_monolith_profile_hosts_everything_in_one_container() -> None:
    model = compose_model("monolith")
    svc = model["services"][COMPOSE_MONOLITH_HOST]
    env = svc["environment"]
    assert env["LLMMESH_SERVICES"] == "all"
    assert (int(env["LLMMESH_PORT"]), int(env["LLMMESH_METRICS_PORT"])) == (MONOLITH_PORT, MONOLITH_METRICS_PORT)
    assert env["LLMMESH_INFERENCE_TARGET"] == f"127.0.0.1:{MONOLITH_PORT}"
    assert flag(healthcheck_args(svc), "--port") == str(MONOLITH_PORT)
    assert not svc.get("ports")


@pytest.mark.parametrize("profile", PROFILES)
def test_http_components_run_in_both_profiles(profile: str) -> None:
    model = compose_model(profile)
    config = envoy_config(model, profile)
    for component in HTTP_COMPONENTS:
        svc = model["services"][component.name]
        assert clusters(config)[f"http_{component.name}"] == [(component.name, component.port)]
        args = svc["healthcheck"]["test"][4:]
        assert (flag(args, "--port"), flag(args, "--http")) == (str(component.port), component.health_path)
        assert "container_name" not in svc and not svc.get("ports")
        # It reaches the inference service through the ingress, whichever shape serves it.
        assert svc["environment"]["LLMMESH_INFERENCE_TARGET"] == f"envoy:{listener_port(config, 'ingress')}"
        assert svc["environment"]["LLMMESH_HOST"] == "0.0.0.0"
    gateway = model["services"]["gateway"]
    assert int(gateway["environment"]["LLMMESH_GATEWAY_PORT"]) == next(
        c.port for c in HTTP_COMPONENTS if c.name == "gateway")


@pytest.mark.parametrize("profile", PROFILES)
def test_envoy_config_reaches_the_profiles_containers(profile: str) -> None:
    model = compose_model(profile)
    services = model["services"]
    config = envoy_config(model, profile)
    by_cluster = clusters(config)
    # Every host Envoy resolves is a container of this profile.
    for cluster, endpoints in by_cluster.items():
        for host, _ in endpoints:
            assert host in services, f"{cluster} -> {host}: no such container in profile {profile}"
            assert profile in services[host].get("profiles", [profile]), (cluster, host)
    # Every llmmesh cluster points at the container's gRPC port.
    for spec in SERVICES:
        ((host, port),) = by_cluster[f"svc_{spec.name}"]
        assert int(services[host]["environment"]["LLMMESH_PORT"]) == port
        if profile == "microservices":
            assert host == spec.name
    # Every backend the services know is a backend cluster of the egress, at an Ollama container.
    for name in ("llmmesh",) if profile == "monolith" else [s.name for s in SERVICES]:
        env = services[name]["environment"]
        backends = [Backend.parse(spec) for spec in env["LLMMESH_BACKENDS"].split(",")]
        assert [b.name for b in backends] == list(BACKENDS)
        for b in backends:
            assert by_cluster[f"backend_{b.name}"] == [(b.host, b.port)]
            assert b.host in services and b.port == OLLAMA_PORT
            assert services[b.host]["environment"]["OLLAMA_HOST"].endswith(f":{OLLAMA_PORT}")
        assert env["LLMMESH_EGRESS_URL"] == f"http://envoy:{listener_port(config, 'egress')}"
    assert listener_port(config, "egress") == EGRESS_PORT
    assert "envoy" in services[ENVOY[profile]]["networks"]["mesh"]["aliases"]


@pytest.mark.parametrize("profile", PROFILES)
def test_envoy_mounts_what_its_config_references(profile: str) -> None:
    model = compose_model(profile)
    envoy = model["services"][ENVOY[profile]]
    assert envoy["image"].startswith("envoyproxy/envoy:v1.40")
    volumes = mounts(envoy)
    config = envoy_config(model, profile)
    assert Path(volumes["/etc/envoy/envoy.yaml"]["source"]) == ROOT / "envoy" / f"compose-{profile}.yaml"
    text = yaml.safe_dump(config)
    # Every container path the rendered config names (the transcoder's descriptor set) is mounted,
    # read-only, from a file that exists in the repo.
    referenced = set(re.findall(r"(/etc/envoy/[\w.\-/]+)", text))
    assert referenced == {CONTAINER_DESCRIPTOR}
    for target in referenced | {"/etc/envoy/envoy.yaml"}:
        vol = volumes[target]
        assert vol["read_only"] is True and vol["type"] == "bind"
        source = Path(vol["source"])
        assert source.is_file() and source.is_relative_to(ROOT / "envoy"), source
    assert Path(volumes[CONTAINER_DESCRIPTOR]["source"]) == ROOT / "envoy" / "llmmesh.pb"


@pytest.mark.parametrize("profile", PROFILES)
def test_only_envoy_publishes_ports_and_admin_stays_on_loopback(profile: str) -> None:
    model = compose_model(profile)
    published = {name: svc["ports"] for name, svc in model["services"].items() if svc.get("ports")}
    assert set(published) == {ENVOY[profile]}
    config = envoy_config(model, profile)
    ports = {p["target"]: p for p in published[ENVOY[profile]]}
    assert set(ports) == {listener_port(config, "ingress"), ADMIN_PORT}
    assert ports[INGRESS_PORT]["published"] == str(INGRESS_PORT)
    assert ports[ADMIN_PORT].get("host_ip") == "127.0.0.1"
    assert config["admin"]["address"]["socket_address"]["port_value"] == ADMIN_PORT


@pytest.mark.parametrize("profile", PROFILES)
def test_healthchecks_dependencies_limits_networks(profile: str) -> None:
    model = compose_model(profile)
    services = model["services"]
    assert model["networks"]["mesh"].get("internal") is True
    llmmesh = ["llmmesh"] if profile == "monolith" else [s.name for s in SERVICES]
    for name, svc in services.items():
        limits = svc["deploy"]["resources"]["limits"]
        assert limits.get("memory"), f"{name}: no memory limit"
        if name != "ollama-pull":  # one-shot; "completed successfully" is its health
            assert svc.get("healthcheck", {}).get("test"), f"{name}: no healthcheck"
            assert svc.get("restart") == "unless-stopped", name
        assert "mesh" in svc["networks"], name
    for name in llmmesh:
        deps = services[name]["depends_on"]
        assert deps[ENVOY[profile]]["condition"] == "service_healthy", name
        assert deps["ollama-pull"]["condition"] == "service_completed_successfully", name
        if name not in ("llmmesh", "inference"):
            assert deps["inference"]["condition"] == "service_healthy", name
        svc = services[name]
        assert svc["read_only"] is True and svc["cap_drop"] == ["ALL"], name
        assert svc["image"] == services[llmmesh[0]]["image"], "one image for every service"
    for component in HTTP_COMPONENTS:
        assert services[component.name]["image"] == services[llmmesh[0]]["image"]
    pull = services["ollama-pull"]
    assert {b: pull["depends_on"][b]["condition"] for b in BACKENDS} == dict.fromkeys(BACKENDS, "service_healthy")
    assert services["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"


@pytest.mark.parametrize("profile", PROFILES)
def test_every_llmmesh_service_shares_state_through_the_redis_container(profile: str) -> None:
    services = compose_model(profile)["services"]
    redis = services["redis"]
    command = redis["command"]
    assert command[0] == "redis-server" and command[command.index("--save") + 1] == ""  # no persistence
    assert command[command.index("--maxmemory-policy") + 1] == "allkeys-lru" and "--maxmemory" in command
    assert redis["read_only"] is True and redis["cap_drop"] == ["ALL"] and redis["user"] != "0"
    assert set(redis["networks"]) == {"mesh"} and not redis.get("ports")
    llmmesh = ["llmmesh"] if profile == "monolith" else [s.name for s in SERVICES]
    for name in llmmesh:
        env = services[name]["environment"]
        assert env["LLMMESH_REDIS_URL"] == "redis://redis:6379/0", name
        assert env["LLMMESH_REDIS_FAILURE_POLICY"] == "open", name
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy", name


@pytest.mark.parametrize("profile", PROFILES)
def test_every_llmmesh_service_serves_the_named_presets(profile: str) -> None:
    services = compose_model(profile)["services"]
    llmmesh = ["llmmesh"] if profile == "monolith" else [s.name for s in SERVICES]
    for name in llmmesh:
        path = services[name]["environment"]["LLMMESH_PRESETS_FILE"]
        mount = mounts(services[name])[path]
        assert Path(mount["source"]) == DEPLOY / "presets.yaml" and mount["read_only"] is True, name
    assert load_presets(str(DEPLOY / "presets.yaml")).by_name


def test_ollama_backends_reserve_a_gpu_and_pull_the_models() -> None:
    model = compose_model("monolith")
    for name in BACKENDS:
        svc = model["services"][name]
        (device,) = svc["deploy"]["resources"]["reservations"]["devices"]
        assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
        env = svc["environment"]
        assert {"OLLAMA_KEEP_ALIVE", "OLLAMA_NUM_PARALLEL"} <= set(env)
        (models,) = [v for v in svc["volumes"] if v["target"] == "/root/.ollama"]
        assert models["type"] == "volume" and models["source"] in model["volumes"]
        assert "ollama" in " ".join(svc["healthcheck"]["test"])
    assert len({model["services"][b]["volumes"][0]["source"] for b in BACKENDS}) == len(BACKENDS)
    pull = model["services"]["ollama-pull"]
    assert pull["environment"]["LLMMESH_MODELS"] == "smollm2:135m"
    # It pulls into exactly the backends the services are configured with.
    backends = [Backend.parse(b) for b in model["services"]["llmmesh"]["environment"]["LLMMESH_BACKENDS"].split(",")]
    assert pull["environment"]["OLLAMA_PULL_HOSTS"].split(",") == [b.host for b in backends]
    # `config` prints `$` escaped as `$$` again; what the shell runs has the variables, not the
    # (empty) values interpolation would have put there for a single `$`.
    script = pull["command"][0].replace("$$", "$")
    assert "ollama pull" in script
    assert '"$LLMMESH_MODELS"' in script and '"$OLLAMA_PULL_HOSTS"' in script


def test_cpu_override_drops_the_gpu_and_nothing_else() -> None:
    for profile in PROFILES:
        gpu, cpu = compose_model(profile), compose_model(profile, cpu=True)
        for name in BACKENDS:
            assert "devices" not in cpu["services"][name]["deploy"]["resources"].get("reservations", {})
            assert cpu["services"][name]["deploy"]["resources"]["limits"]["cpus"]
        others = set(gpu["services"]) - set(BACKENDS)
        assert {n: gpu["services"][n] for n in others} == {n: cpu["services"][n] for n in others}


def test_several_gpu_hosts_override_backends_and_envoy_config_together() -> None:
    # docs/deploy.md: a site-rendered Envoy config and the matching backend list, set in `.env`.
    backends = "ollama1=http://ollama1:11434,gpu2=http://10.0.0.12:11434"
    env = {"LLMMESH_ENVOY_MONOLITH_CONFIG": "site-monolith.yaml", "LLMMESH_COMPOSE_BACKENDS": backends,
           "OLLAMA_PULL_HOSTS": "ollama1,10.0.0.12"}
    done = run_compose("--profile", "monolith", "config", "--format", "json", env=env)
    assert done.returncode == 0, done.stderr
    services = json.loads(done.stdout)["services"]
    envoy = mounts(services["envoy-monolith"])
    assert Path(envoy["/etc/envoy/envoy.yaml"]["source"]) == ROOT / "envoy" / "site-monolith.yaml"
    assert services["llmmesh"]["environment"]["LLMMESH_BACKENDS"] == backends
    assert services["ollama-pull"]["environment"]["OLLAMA_PULL_HOSTS"] == "ollama1,10.0.0.12"
    # Remote backends are reachable: Envoy and the model puller are on the non-internal network.
    assert "edge" in services["envoy-monolith"]["networks"] and "edge" in services["ollama-pull"]["networks"]


# --- Prometheus and Grafana ---------------------------------------------------------------------


def scrape_targets() -> dict[str, set[tuple[str, int]]]:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    out: dict[str, set[tuple[str, int]]] = {}
    for job in config["scrape_configs"]:
        targets = out.setdefault(job["job_name"], set())
        for sd in job.get("dns_sd_configs", []):
            targets |= {(name, sd["port"]) for name in sd["names"]}
        for static in job.get("static_configs", []):
            for t in static["targets"]:
                host, _, port = t.rpartition(":")
                targets.add((host, int(port)))
    return out


def test_prometheus_scrapes_every_topology_service_and_envoy() -> None:
    targets = scrape_targets()
    for spec in SERVICES:
        assert targets.get(spec.name) == {(spec.name, spec.metrics_port)}, spec.name
    assert targets["llmmesh"] == {(COMPOSE_MONOLITH_HOST, MONOLITH_METRICS_PORT)}
    assert targets["envoy"] == {("envoy", ADMIN_PORT)}
    for component in HTTP_COMPONENTS:
        assert targets[component.name] == {(component.name, component.port)}
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (envoy_job,) = [j for j in config["scrape_configs"] if j["job_name"] == "envoy"]
    assert envoy_job["metrics_path"] == "/stats/prometheus"
    # And the compose file mounts exactly this config into the Prometheus container.
    prom = compose_model("monolith")["services"]["prometheus"]
    config_flag = next(a for a in prom["command"] if a.startswith("--config.file="))
    source = mounts(prom)[config_flag.partition("=")[2]]["source"]
    assert Path(source) == DEPLOY / "prometheus" / "prometheus.yml"


def test_prometheus_targets_match_the_compose_metrics_ports() -> None:
    targets = {t for ts in scrape_targets().values() for t in ts}
    for profile in PROFILES:
        for name, svc in compose_model(profile)["services"].items():
            env = svc.get("environment", {})
            port = env.get("LLMMESH_METRICS_PORT") or env.get("LLMMESH_GATEWAY_PORT")
            if port:
                assert (name, int(port)) in targets, f"{name}:{port} is not scraped"


def dashboard() -> dict:
    return json.loads((DEPLOY / "grafana" / "dashboards" / "llmmesh.json").read_text())


def expressions(dash: dict) -> list[str]:
    return [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]


def registered_metric_names() -> set[str]:
    """Sample names the services export (a fresh registry, every metric set)."""
    registry = CollectorRegistry()
    GrpcServerMetrics.create(registry)
    InferenceMetrics.create(registry)
    CacheMetrics.create(registry)
    RedisMetrics.create(registry)
    names = set()
    for family in registry.collect():
        kind = family.type
        base = family.name
        names.add(base)
        if kind == "counter":
            names.add(base + "_total")
        if kind == "histogram":
            names |= {base + s for s in ("_bucket", "_sum", "_count")}
    return names


def unknown_metrics(promql: str) -> set[str]:
    """llmmesh/gRPC metric names in PromQL text that no service registers."""
    names_only = re.sub(r"\{[^}]*\}|\bby \([^)]*\)", " ", promql)
    return set(re.findall(r"\b((?:grpc_server|llmmesh)_[a-z_]+)", names_only)) - registered_metric_names()


def test_grafana_dashboard_has_the_panels_and_only_real_metrics() -> None:
    dash = dashboard()
    exprs = expressions(dash)
    text = "\n".join(exprs)
    for required in ("grpc_server_handled_total", "llmmesh_inference_time_to_first_token_seconds_bucket",
                     "llmmesh_inference_tokens_per_second_bucket", "llmmesh_inference_output_tokens_total",
                     "llmmesh_backend_healthy", "llmmesh_inference_failovers_total", "llmmesh_backend_in_flight",
                     "llmmesh_inference_queue_depth", "llmmesh_inference_queue_wait_seconds_bucket",
                     "llmmesh_inference_queue_refused_total"):
        assert required in text, required
    # The response cache's hit ratio, and whether the shared-state Redis is reachable.
    assert "llmmesh_cache_hits_total" in text and "llmmesh_cache_misses_total" in text and "llmmesh_redis_up" in text
    # Every llmmesh/gRPC metric a panel queries is one the services register (no typo, no drift).
    assert not unknown_metrics(text), unknown_metrics(text)
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for expr in exprs:
        assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), expr


def test_alert_rules_are_loaded_by_compose_prometheus_and_query_only_real_metrics() -> None:
    # promtool is not installed here: the rules are checked for shape and metric names instead.
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (rule_file,) = config["rule_files"]
    prom = compose_model("monolith")["services"]["prometheus"]
    assert Path(mounts(prom)[rule_file]["source"]) == DEPLOY / "prometheus" / "alerts.yml"
    groups = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())["groups"]
    rules = {r["alert"]: r for g in groups for r in g["rules"]}
    assert set(rules) == {"LlmmeshBackendDown", "LlmmeshHighErrorRate", "LlmmeshSlowFirstToken"}
    down, errors, ttft = rules["LlmmeshBackendDown"], rules["LlmmeshHighErrorRate"], rules["LlmmeshSlowFirstToken"]
    assert (down["expr"].strip(), down["for"]) == ("llmmesh_backend_healthy == 0", "1m")
    assert 'grpc_server_handled_total{grpc_code!="OK"}' in errors["expr"] and errors["expr"].rstrip().endswith("> 0.05")
    assert errors["for"] == "5m"
    assert "histogram_quantile(0.95" in ttft["expr"]
    assert "llmmesh_inference_time_to_first_token_seconds_bucket" in ttft["expr"]
    for name, rule in rules.items():
        expr = rule["expr"]
        assert not unknown_metrics(expr), (name, unknown_metrics(expr))
        assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), name
        assert rule["labels"]["severity"] in ("critical", "warning") and rule["annotations"]["summary"], name


def test_grafana_provisioning_points_at_the_dashboard_and_prometheus() -> None:
    grafana = compose_model("monolith")["services"]["grafana"]
    volumes = mounts(grafana)
    provisioning = Path(volumes["/etc/grafana/provisioning"]["source"])
    sources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    by_type = {d["type"]: d for d in sources}
    assert set(by_type) == {"prometheus", "jaeger"}
    datasource, jaeger = by_type["prometheus"], by_type["jaeger"]
    assert datasource["url"] == "http://prometheus:9090"
    # Exemplars (trace ids on the latency histograms) link to the traces in compose's Jaeger.
    assert jaeger["url"] == "http://jaeger:16686" and "jaeger" in compose_model("monolith")["services"]
    (link,) = datasource["jsonData"]["exemplarTraceIdDestinations"]
    assert (link["name"], link["datasourceUid"]) == ("trace_id", jaeger["uid"])
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "llmmesh.yml").read_text())["providers"]
    dash_dir = provider["options"]["path"]
    assert Path(volumes[dash_dir]["source"]) == DEPLOY / "grafana" / "dashboards"
    uids = {t["datasource"]["uid"] for p in dashboard()["panels"] for t in p.get("targets", [])}
    assert uids == {datasource["uid"]}
    assert grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"] == f"{dash_dir}/llmmesh.json"


@pytest.mark.parametrize("profile", PROFILES)
def test_every_llmmesh_service_stores_runs_in_the_postgres_container(profile: str) -> None:
    services = compose_model(profile)["services"]
    postgres = services["postgres"]
    env = postgres["environment"]
    assert postgres["read_only"] is True and postgres["cap_drop"] == ["ALL"] and postgres["user"] != "0"
    assert set(postgres["networks"]) == {"mesh"} and not postgres.get("ports")
    assert any(v["target"] == "/var/lib/postgresql/data" and v["type"] == "volume" for v in postgres["volumes"])
    expected = f"postgresql://{env['POSTGRES_USER']}:{env['POSTGRES_PASSWORD']}@postgres:5432/{env['POSTGRES_DB']}"
    llmmesh = ["llmmesh"] if profile == "monolith" else [s.name for s in SERVICES]
    for name in llmmesh:
        svc = services[name]
        assert svc["environment"]["LLMMESH_DATABASE_URL"] == expected, name
        assert svc["depends_on"]["postgres"]["condition"] == "service_healthy", name
