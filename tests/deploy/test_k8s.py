"""The Kubernetes manifests (deploy/k8s, Kustomize): they parse, mirror the topology description
(ports, gRPC probe service names, Service names the rendered Envoy config resolves), and
`kustomize build` (kubectl's built-in kustomize) assembles them with the rendered config."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import yaml

from llmmesh.common.backends import HEALTH_PATHS, Protocol
from llmmesh.topology.description import (
    ADMIN_PORT,
    EGRESS_PORT,
    HTTP_COMPONENTS,
    INGRESS_PORT,
    INTERNAL_PORT,
    OLLAMA_PORT,
    SERVICES,
)
from llmmesh.topology.params import Backend
from llmmesh.topology.presets import CONTAINER_DESCRIPTOR
from tests.deploy.support import K8S, ROOT, kustomize_command

HPA_TARGETS = {"inference", "judge", "jury"}


def kustomization() -> dict:
    return yaml.safe_load((K8S / "kustomization.yaml").read_text())


def resources() -> list[dict]:
    docs = []
    for rel in kustomization()["resources"]:
        docs += [d for d in yaml.safe_load_all((K8S / rel).read_text()) if d]
    return docs


def by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def container(workload: dict) -> dict:
    (c,) = workload["spec"]["template"]["spec"]["containers"]
    return c


def env_of(c: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in c.get("env", [])}


def generator_literals(name: str) -> dict[str, str]:
    (gen,) = [g for g in kustomization()["configMapGenerator"] if g["name"] == name]
    return dict(lit.split("=", 1) for lit in gen["literals"])


def envoy_bootstrap() -> dict:
    (gen,) = [g for g in kustomization()["configMapGenerator"] if g["name"] == "envoy-config"]
    files = dict(f.split("=", 1) for f in gen["files"])
    return yaml.safe_load((K8S / files["envoy.yaml"]).read_text())


def test_every_file_parses_and_is_listed() -> None:
    listed = set(kustomization()["resources"])
    patches = {p["path"] for p in kustomization().get("patches", [])}
    on_disk = {str(p.relative_to(K8S)) for p in K8S.rglob("*.yaml")} - {"kustomization.yaml"} - patches
    assert listed == on_disk
    for doc in resources():
        assert {"apiVersion", "kind", "metadata"} <= set(doc), doc
        assert "namespace" not in doc["metadata"] or doc["kind"] == "Namespace"  # kustomize sets it


def test_one_deployment_and_headless_service_per_topology_service() -> None:
    docs = resources()
    deployments, services = by_kind(docs, "Deployment"), by_kind(docs, "Service")
    infra = {"envoy", "redis", "jaeger"}
    assert set(deployments) == {s.name for s in SERVICES} | {c.name for c in HTTP_COMPONENTS} | infra
    for spec in SERVICES:
        svc = services[spec.name]
        assert svc["spec"]["clusterIP"] == "None", f"{spec.name}: Envoy needs one A record per pod"
        assert {p["name"]: p["port"] for p in svc["spec"]["ports"]} == {"grpc": spec.port,
                                                                        "metrics": spec.metrics_port}
        dep = deployments[spec.name]
        labels = dep["spec"]["template"]["metadata"]["labels"]
        assert svc["spec"]["selector"].items() <= labels.items()
        assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items()
        c = container(dep)
        env = env_of(c)
        assert env["LLMMESH_SERVICES"] == spec.name
        assert (int(env["LLMMESH_PORT"]), int(env["LLMMESH_METRICS_PORT"])) == (spec.port, spec.metrics_port)
        assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"grpc": spec.port,
                                                                       "metrics": spec.metrics_port}
        assert [r["configMapRef"]["name"] for r in c["envFrom"]] == ["llmmesh-env"]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert c[probe]["grpc"] == {"port": spec.port, "service": spec.grpc_service}, (spec.name, probe)
        assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]
        pod_sec = dep["spec"]["template"]["spec"]["securityContext"]
        assert pod_sec["runAsNonRoot"] is True and pod_sec["runAsUser"] > 0
        sec = c["securityContext"]
        assert sec["allowPrivilegeEscalation"] is False and sec["readOnlyRootFilesystem"] is True
        assert sec["capabilities"]["drop"] == ["ALL"]
        annotations = dep["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(spec.metrics_port)
        # The HPA owns the replica count of the autoscaled ones.
        assert ("replicas" in dep["spec"]) == (spec.name not in HPA_TARGETS), spec.name


def test_http_components_have_a_deployment_and_headless_service() -> None:
    docs = resources()
    deployments, services = by_kind(docs, "Deployment"), by_kind(docs, "Service")
    for component in HTTP_COMPONENTS:
        svc = services[component.name]
        assert svc["spec"]["clusterIP"] == "None"
        assert [p["port"] for p in svc["spec"]["ports"]] == [component.port]
        dep = deployments[component.name]
        assert svc["spec"]["selector"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
        c = container(dep)
        assert [p["containerPort"] for p in c["ports"]] == [component.port]
        named = {p["name"]: p["containerPort"] for p in c["ports"]}
        for probe in ("readinessProbe", "livenessProbe"):
            get = c[probe]["httpGet"]
            assert get["path"] == component.health_path and named[get["port"]] == component.port
        annotations = dep["spec"]["template"]["metadata"]["annotations"]
        assert (annotations["prometheus.io/port"], annotations["prometheus.io/path"]) == (
            str(component.port), component.metrics_path)
        assert dep["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    gateway = container(deployments["gateway"])
    assert env_of(gateway)["LLMMESH_GATEWAY_PORT"] == str(next(c.port for c in HTTP_COMPONENTS
                                                               if c.name == "gateway"))


def test_shared_env_matches_the_topology_and_envoy() -> None:
    env = generator_literals("llmmesh-env")
    inference = next(s for s in SERVICES if s.name == "inference")
    assert env["LLMMESH_HOST"] == "0.0.0.0"
    assert env["LLMMESH_INFERENCE_TARGET"] == f"inference:{inference.port}"
    assert env["LLMMESH_EGRESS_URL"] == f"http://envoy:{EGRESS_PORT}"
    config = envoy_bootstrap()
    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}
    services = by_kind(resources(), "Service")
    for spec in env["LLMMESH_BACKENDS"].split(","):
        backend = Backend.parse(spec)
        assert f"backend_{backend.name}" in clusters
        # The host Envoy resolves is a Service in the namespace, selecting one Ollama pod.
        svc = services[backend.host]
        assert svc["spec"]["clusterIP"] == "None" and backend.port == OLLAMA_PORT
        assert "statefulset.kubernetes.io/pod-name" in svc["spec"]["selector"]


def test_envoy_config_names_only_services_that_exist() -> None:
    """The rendered microservices config works unchanged: every host it resolves is a Service."""
    config = envoy_bootstrap()
    services = by_kind(resources(), "Service")
    hosts = set()
    for c in config["static_resources"]["clusters"]:
        for ep in c["load_assignment"]["endpoints"][0]["lb_endpoints"]:
            sock = ep["endpoint"]["address"]["socket_address"]
            hosts.add((sock["address"], sock["port_value"]))
    for host, port in hosts:
        assert host in services, f"Envoy resolves {host!r}: no Service of that name"
        assert port in {p["port"] for p in services[host]["spec"]["ports"]}, (host, port)
    assert {s.name for s in SERVICES} <= {h for h, _ in hosts}


def test_envoy_deployment_serves_the_generated_config() -> None:
    docs = resources()
    envoy = by_kind(docs, "Deployment")["envoy"]
    c = container(envoy)
    assert c["image"].startswith("envoyproxy/envoy:v1.40")
    config_path = c["args"][c["args"].index("-c") + 1]
    (mount,) = [m for m in c["volumeMounts"] if config_path.startswith(m["mountPath"] + "/")]
    (volume,) = [v for v in envoy["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"]]
    assert volume["configMap"]["name"] == "envoy-config"
    (gen,) = [g for g in kustomization()["configMapGenerator"] if g["name"] == "envoy-config"]
    keys = dict(f.split("=", 1) for f in gen["files"])
    # The config file and the descriptor it names both land in the mounted directory.
    assert config_path == f"{mount['mountPath']}/envoy.yaml" and "envoy.yaml" in keys
    assert CONTAINER_DESCRIPTOR == f"{mount['mountPath']}/llmmesh.pb" and "llmmesh.pb" in keys
    assert (K8S / keys["envoy.yaml"]).resolve() == ROOT / "envoy" / "compose-microservices.yaml"
    assert (K8S / keys["llmmesh.pb"]).resolve() == ROOT / "envoy" / "llmmesh.pb"
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {
        "ingress": INGRESS_PORT, "internal": INTERNAL_PORT, "egress": EGRESS_PORT, "admin": ADMIN_PORT}
    assert c["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "admin"}
    services = by_kind(docs, "Service")
    front = services["llmmesh-ingress"]
    # The front door exposes the ingress only: never the egress or the admin API.
    assert [p["port"] for p in front["spec"]["ports"]] == [INGRESS_PORT]
    assert front["spec"]["selector"] == envoy["spec"]["selector"]["matchLabels"]
    assert {p["port"] for p in services["envoy"]["spec"]["ports"]} == {INGRESS_PORT, INTERNAL_PORT, EGRESS_PORT,
                                                                       ADMIN_PORT}


def test_the_gateway_runs_the_patterns_through_envoys_internal_listener() -> None:
    docs = resources()
    env = {e["name"]: e.get("value") for e in container(by_kind(docs, "Deployment")["gateway"]).get("env", [])}
    host, _, port = env["LLMMESH_PATTERNS_TARGET"].partition(":")
    assert (host, int(port)) == ("envoy", INTERNAL_PORT)
    assert INTERNAL_PORT in {p["port"] for p in by_kind(docs, "Service")["envoy"]["spec"]["ports"]}
    config = yaml.safe_load((ROOT / "envoy" / "compose-microservices.yaml").read_text())
    listeners = {item["name"]: item["address"]["socket_address"]["port_value"]
                 for item in config["static_resources"]["listeners"]}
    assert listeners["internal"] == INTERNAL_PORT


def test_every_service_shares_state_through_the_redis_deployment() -> None:
    docs = resources()
    env = generator_literals("llmmesh-env")
    assert env["LLMMESH_REDIS_URL"] == "redis://redis:6379/0" and env["LLMMESH_REDIS_FAILURE_POLICY"] == "open"
    svc, dep = by_kind(docs, "Service")["redis"], by_kind(docs, "Deployment")["redis"]
    assert [p["port"] for p in svc["spec"]["ports"]] == [6379]
    assert svc["spec"]["selector"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    assert dep["spec"]["replicas"] == 1  # one store: several would each hold their own limits
    c = container(dep)
    assert c["args"][c["args"].index("--save") + 1] == "" and "allkeys-lru" in c["args"]
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"redis": 6379}
    assert c["securityContext"]["readOnlyRootFilesystem"] is True and c["resources"]["limits"]["memory"]
    assert dep["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def test_ollama_statefulset_has_gpus_and_model_volumes() -> None:
    docs = resources()
    sts = by_kind(docs, "StatefulSet")["ollama"]
    c = container(sts)
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 1
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert [m["name"] for m in c["volumeMounts"]] == [claim["metadata"]["name"]]
    # The same check as Envoy's egress health checks (one definition of a backend's health path).
    assert c["readinessProbe"]["httpGet"]["path"] == HEALTH_PATHS[Protocol.OLLAMA]
    assert {e["name"] for e in c["env"]} >= {"OLLAMA_KEEP_ALIVE", "OLLAMA_NUM_PARALLEL"}
    assert sts["spec"]["serviceName"] in by_kind(docs, "Service")
    # One per-pod Service per replica: ollama1 -> ollama-0, ...
    pods = {svc["spec"]["selector"].get("statefulset.kubernetes.io/pod-name")
            for svc in by_kind(docs, "Service").values()}
    assert {f"ollama-{i}" for i in range(sts["spec"]["replicas"])} <= pods
    job = by_kind(docs, "Job")["ollama-pull"]
    assert "ollama pull" in container(job)["args"][0]
    models = generator_literals("llmmesh-models")
    assert models["LLMMESH_MODELS"] == "smollm2:135m"
    backends = [Backend.parse(b) for b in generator_literals("llmmesh-env")["LLMMESH_BACKENDS"].split(",")]
    assert models["OLLAMA_PULL_HOSTS"].split(",") == [b.host for b in backends]


def test_hpas_scale_the_busiest_patterns() -> None:
    docs = resources()
    hpas = by_kind(docs, "HorizontalPodAutoscaler")
    assert set(hpas) == HPA_TARGETS
    deployments = by_kind(docs, "Deployment")
    for name, hpa in hpas.items():
        ref = hpa["spec"]["scaleTargetRef"]
        assert (ref["kind"], ref["name"]) == ("Deployment", name) and name in deployments
        assert 1 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
        # Utilization needs requests to compare against.
        assert container(deployments[name])["resources"]["requests"]["cpu"]


def test_kustomize_build(tmp_path: Path) -> None:
    command = kustomize_command()
    # scripts/test installs kubectl where the machine image lacks it (bootstrap: ensure_kubectl).
    assert command is not None, "neither kustomize nor kubectl on PATH"
    done = subprocess.run([*command, "--load-restrictor", "LoadRestrictionsNone", str(K8S)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    built = [d for d in yaml.safe_load_all(done.stdout) if d]
    assert all(d["metadata"].get("namespace") == "llmmesh" for d in built if d["kind"] != "Namespace")
    configmaps = {d["metadata"]["name"].rsplit("-", 1)[0]: d for d in built if d["kind"] == "ConfigMap"}
    envoy_cm = configmaps["envoy-config"]
    assert envoy_cm["data"]["envoy.yaml"] == (ROOT / "envoy" / "compose-microservices.yaml").read_text()
    assert base64.b64decode(envoy_cm["binaryData"]["llmmesh.pb"]) == (ROOT / "envoy" / "llmmesh.pb").read_bytes()
    # Generated names carry a content hash, and every reference was rewritten to it.
    deployments = {d["metadata"]["name"]: d for d in built if d["kind"] == "Deployment"}
    volumes = deployments["envoy"]["spec"]["template"]["spec"]["volumes"]
    assert {"configMap": {"name": envoy_cm["metadata"]["name"]}, "name": "config"} in volumes
    env_cm = configmaps["llmmesh-env"]["metadata"]["name"]
    for name in [s.name for s in SERVICES] + [c.name for c in HTTP_COMPONENTS]:
        c = container(deployments[name])
        assert c["envFrom"] == [{"configMapRef": {"name": env_cm}}]
        assert c["image"].startswith("llmmesh:")
    # Without the flag kustomize refuses files outside deploy/k8s: the docs say to pass it.
    plain = subprocess.run([*command, str(K8S)], capture_output=True, text=True, timeout=120)
    assert plain.returncode != 0


def test_every_service_reaches_the_run_store_through_a_secret(tmp_path: Path) -> None:
    docs = resources()
    svc, sts = by_kind(docs, "Service")["postgres"], by_kind(docs, "StatefulSet")["postgres"]
    assert [p["port"] for p in svc["spec"]["ports"]] == [5432] and svc["spec"]["clusterIP"] == "None"
    assert sts["spec"]["serviceName"] == "postgres" and sts["spec"]["replicas"] == 1
    assert svc["spec"]["selector"].items() <= sts["spec"]["template"]["metadata"]["labels"].items()
    c = container(sts)
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert {m["name"]: m["mountPath"] for m in c["volumeMounts"]}[claim["metadata"]["name"]] == (
        "/var/lib/postgresql/data")
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert sts["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    (gen,) = [g for g in kustomization()["secretGenerator"] if g["name"] == "llmmesh-db"]
    secret = dict(lit.split("=", 1) for lit in gen["literals"])
    env = {e["name"]: e for e in c["env"]}
    assert env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "llmmesh-db", "key": "postgres-password"}
    url = f"postgresql://{env['POSTGRES_USER']['value']}:{secret['postgres-password']}@postgres:5432/" \
          f"{env['POSTGRES_DB']['value']}"
    assert secret["database-url"] == url
    # Built, every llmmesh service but the gateway gets the URL from that Secret (hashed name).
    command = kustomize_command()
    assert command is not None
    done = subprocess.run([*command, "--load-restrictor", "LoadRestrictionsNone", str(K8S)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    built = [d for d in yaml.safe_load_all(done.stdout) if d]
    (secret_name,) = [d["metadata"]["name"] for d in built if d["kind"] == "Secret"
                      and d["metadata"]["name"].startswith("llmmesh-db-")]
    deployments = {d["metadata"]["name"]: d for d in built if d["kind"] == "Deployment"}
    for name in [s.name for s in SERVICES]:
        env = {e["name"]: e for e in container(deployments[name])["env"]}
        assert env["LLMMESH_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": secret_name, "key": "database-url"}
    assert "LLMMESH_DATABASE_URL" not in {e["name"] for e in container(deployments["gateway"]).get("env", [])}
    # And each serves the named presets: deploy/presets.yaml, as a ConfigMap mounted read-only.
    (presets,) = [d for d in built if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("llmmesh-presets-")]
    assert presets["data"]["presets.yaml"] == (ROOT / "deploy" / "presets.yaml").read_text()
    for name in [s.name for s in SERVICES]:
        spec = deployments[name]["spec"]["template"]["spec"]
        c = container(deployments[name])
        path = {e["name"]: e.get("value") for e in c["env"]}["LLMMESH_PRESETS_FILE"]
        volume = next(v["name"] for v in spec["volumes"]
                      if v.get("configMap", {}).get("name") == presets["metadata"]["name"])
        (mount,) = [m for m in c["volumeMounts"] if m["name"] == volume]
        assert path == f"{mount['mountPath']}/presets.yaml" and mount["readOnly"] is True, name
