"""Security switched on where users deploy: compose.secure.yaml (+ compose.mtls.yaml) and the
Kubernetes overlays deploy/k8s-secure (+ deploy/k8s-mtls), with the secrets made by
`python -m llmmesh.topology.deploy_secrets`.

No Docker engine or cluster: Compose resolves the files (`config`), kustomize builds the overlays,
and each Envoy bootstrap is validated by the real Envoy (`--mode validate`) with the certificate
files placed where that deployment mounts them, so a path, a mount or a certificate that does not
fit fails here. The services' side is checked the same way: every file their settings name is one
the deployment mounts.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from llmmesh.framework.auth import ApiKeyAuthenticator
from llmmesh.framework.identity import read_service_key
from llmmesh.settings import GatewaySettings, ServiceTlsSettings, Settings
from llmmesh.topology.description import HTTP_COMPONENTS, INTERNAL_PORT, SERVICES, Shape
from llmmesh.topology.presets import (
    CONTAINER_API_KEYS,
    CONTAINER_DESCRIPTOR,
    CONTAINER_MESH_TLS,
    CONTAINER_SERVICE_KEY,
    SECRETS_DIR,
    Security,
    mesh_certificate_names,
)
from llmmesh.topology.render import compose_example_name
from tests.deploy.support import (
    COMPOSE_CPU_FILE,
    COMPOSE_FILE,
    COMPOSE_MTLS_FILE,
    COMPOSE_SECURE_FILE,
    DEPLOY,
    ROOT,
    compose_config,
    kustomize_command,
    mounts,
)
from tests.support.envoy_proc import ENVOY

PROFILES = [shape.value for shape in Shape]
SECURED = [Security.TLS, Security.MTLS]
COMPOSE_FILES = {Security.TLS: (COMPOSE_FILE, COMPOSE_SECURE_FILE),
                 Security.MTLS: (COMPOSE_FILE, COMPOSE_SECURE_FILE, COMPOSE_MTLS_FILE)}
OVERLAYS = {Security.TLS: "k8s-secure", Security.MTLS: "k8s-mtls"}
GATEWAY_NAMES = {c.name for c in HTTP_COMPONENTS}
INGRESS_HOST = "mesh.example.com"
SECRET_PATH = re.compile(re.escape(SECRETS_DIR) + r"/[\w./-]+")


@pytest.fixture(scope="module")
def made_secrets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(directory, the admin key it printed), as a user makes them."""
    out = tmp_path_factory.mktemp("deploy") / "secrets"
    done = subprocess.run([sys.executable, "-m", "llmmesh.topology.deploy_secrets", "--dir", str(out),
                           "--ingress-host", INGRESS_HOST], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return out, done.stdout.strip()


def openssl(*args: str) -> str:
    done = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def alt_names(cert: Path) -> set[str]:
    text = openssl("x509", "-in", str(cert), "-noout", "-ext", "subjectAltName")
    return {n.strip().removeprefix("DNS:").removeprefix("IP Address:") for n in text.splitlines()[1].split(",")}


def validate_envoy(config_text: str, files: dict[str, bytes], where: Path) -> None:
    """Run Envoy's validation on a container's bootstrap, with `files` (container path -> content)
    laid out under `where` and the config's secret and descriptor paths pointed there."""
    referenced = set(SECRET_PATH.findall(config_text))
    assert referenced, "the bootstrap names no secret file"
    assert referenced <= set(files), f"named by the bootstrap but not mounted: {sorted(referenced - set(files))}"
    for path, content in files.items():
        target = where / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    text = config_text.replace(SECRETS_DIR, str(where / SECRETS_DIR.lstrip("/")))
    text = text.replace(CONTAINER_DESCRIPTOR, str(ROOT / "envoy" / "llmmesh.pb"))
    config = where / "envoy.yaml"
    config.write_text(text)
    done = subprocess.run([ENVOY, "--mode", "validate", "-c", str(config)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


# --- the secrets ---------------------------------------------------------------------------------


def test_the_secrets_tool_makes_keys_and_certificates_that_fit(made_secrets: tuple[Path, str],
                                                              tmp_path: Path) -> None:
    out, admin_key = made_secrets
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()}
    # Compose mounts the host files as they are: readable by the containers' users; the CA's key
    # stays with the owner.
    assert modes.pop("ca.key") == 0o600
    assert set(modes.values()) == {0o644}, modes
    assert set(modes) == {"api-keys.json", "service.key", "ca.crt", "ingress.crt", "ingress.key", "mesh.crt",
                          "mesh.key"}

    # The printed key is an admin key of the file the services load.
    auth = ApiKeyAuthenticator.from_file(str(out / "api-keys.json"), {})
    assert auth.authenticate("llmmesh.judge.v1.JudgeService", {"authorization": f"Bearer {admin_key}"}).name == "admin"
    assert admin_key not in (out / "api-keys.json").read_text()
    assert len(read_service_key(str(out / "service.key"))) >= 32

    # Both certificates are the CA's; the mesh's names every container the services are dialled by.
    assert openssl("verify", "-CAfile", str(out / "ca.crt"), str(out / "mesh.crt"), str(out / "ingress.crt"))
    assert set(mesh_certificate_names()) <= alt_names(out / "mesh.crt")
    assert {s.name for s in SERVICES} | GATEWAY_NAMES <= alt_names(out / "mesh.crt")
    assert {INGRESS_HOST, "localhost", "127.0.0.1"} <= alt_names(out / "ingress.crt")
    usage = openssl("x509", "-in", str(out / "mesh.crt"), "-noout", "-ext", "extendedKeyUsage")
    assert "Server Authentication" in usage and "Client Authentication" in usage

    # Run again on a copy: what exists is kept; `llmmesh-keys add` keeps the file readable.
    copy = tmp_path / "secrets"
    shutil.copytree(out, copy)
    before = {p.name: p.read_bytes() for p in copy.iterdir()}
    again = subprocess.run([sys.executable, "-m", "llmmesh.topology.deploy_secrets", "--dir", str(copy)],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and again.stdout == "", again.stderr
    assert {p.name: p.read_bytes() for p in copy.iterdir()} == before
    added = subprocess.run([sys.executable, "-m", "llmmesh.framework.keys_cli", "--file", str(copy / "api-keys.json"),
                            "add", "ci", "--scopes", "judge"], capture_output=True, text=True, timeout=60)
    assert added.returncode == 0, added.stderr
    assert stat.S_IMODE((copy / "api-keys.json").stat().st_mode) == 0o644
    assert len(json.loads((copy / "api-keys.json").read_text())["keys"]) == 2


# --- compose ---------------------------------------------------------------------------------------


def secured_compose(profile: str, security: Security, secrets_dir: Path, cpu: bool = False) -> dict:
    files = COMPOSE_FILES[security] + ((COMPOSE_CPU_FILE,) if cpu else ())
    return compose_config(profile, files, {"LLMMESH_SECRETS_DIR": str(secrets_dir)})


def secret_files(model: dict, service: dict) -> dict[str, Path]:
    """A compose service's secrets: path in the container -> the host file."""
    top = model["secrets"]
    return {s["target"]: Path(top[s["source"]]["file"]) for s in service.get("secrets", [])}


def llmmesh_containers(model: dict) -> dict[str, dict]:
    """The containers of the llmmesh image that host services (the gateway is not one)."""
    image = model["services"]["gateway"]["image"]
    return {n: s for n, s in model["services"].items() if s.get("image") == image and n not in GATEWAY_NAMES}


@pytest.mark.parametrize("security", SECURED)
@pytest.mark.parametrize("profile", PROFILES)
def test_secured_compose_gives_every_service_the_files_its_settings_name(
        profile: str, security: Security, made_secrets: tuple[Path, str]) -> None:
    out, _ = made_secrets
    model = secured_compose(profile, security, out)
    services = model["services"]
    containers = llmmesh_containers(model)
    assert containers and set(containers) == set(llmmesh_containers(compose_config(profile)))
    for name, svc in containers.items():
        settings = Settings.from_env(svc["environment"])
        assert (settings.auth.api_keys_file, settings.auth.service_key_file) == (CONTAINER_API_KEYS,
                                                                                 CONTAINER_SERVICE_KEY), name
        files = secret_files(model, svc)
        assert (files[CONTAINER_API_KEYS], files[CONTAINER_SERVICE_KEY]) == (out / "api-keys.json", out / "service.key")
        expected_tls = CONTAINER_MESH_TLS if security is Security.MTLS else ServiceTlsSettings()
        assert settings.tls == expected_tls, name
        if settings.tls.enabled:
            assert (files[settings.tls.cert_file], files[settings.tls.key_file], files[settings.tls.ca_file]) == (
                out / "mesh.crt", out / "mesh.key", out / "ca.crt")

    # The ingress speaks TLS only now: the gateway reaches the inference service directly, by an
    # alias of whichever container serves it in this shape, and forwards its callers' keys.
    gateway = services["gateway"]
    host, _, port = gateway["environment"]["LLMMESH_INFERENCE_TARGET"].rpartition(":")
    serving = [n for n, s in containers.items()
               if host in ((s["networks"].get("mesh") or {}).get("aliases") or [])]
    assert serving == ["llmmesh" if profile == "monolith" else "inference"]
    assert int(services[serving[0]]["environment"]["LLMMESH_PORT"]) == int(port)
    # It holds the key file (its /mcp checks keys and filters tools by scope), never the service key.
    gateway_settings = GatewaySettings.from_env(gateway["environment"])
    assert gateway_settings.api_keys_file == CONTAINER_API_KEYS
    assert secret_files(model, gateway)[CONTAINER_API_KEYS] == out / "api-keys.json"
    assert CONTAINER_SERVICE_KEY not in secret_files(model, gateway)
    assert gateway_settings.tls == (CONTAINER_MESH_TLS if security is Security.MTLS else ServiceTlsSettings())
    # The patterns (/mcp) through Envoy's internal listener, by a name Envoy answers to on the mesh
    # network: the ingress's TLS does not stand in the way, and the mesh certificate names it.
    host, _, port = gateway_settings.patterns_target.rpartition(":")
    envoy_service = services[f"envoy-{profile}"]
    assert host in envoy_service["networks"]["mesh"]["aliases"] and int(port) == INTERNAL_PORT
    assert str(INTERNAL_PORT) not in {str(p.get("target")) for p in envoy_service.get("ports", [])}
    assert host in mesh_certificate_names()

    # Envoy runs the bootstrap rendered for this variant, and it validates with the files mounted
    # where they are mounted.
    envoy = services[f"envoy-{profile}"]
    config = mounts(envoy)["/etc/envoy/envoy.yaml"]["source"]
    assert Path(config) == ROOT / "envoy" / compose_example_name(Shape(profile), security)


@pytest.mark.parametrize("security", SECURED)
@pytest.mark.parametrize("profile", PROFILES)
def test_secured_compose_envoy_validates_with_its_mounted_certificates(
        profile: str, security: Security, made_secrets: tuple[Path, str], tmp_path: Path) -> None:
    out, _ = made_secrets
    model = secured_compose(profile, security, out)
    envoy = model["services"][f"envoy-{profile}"]
    config_text = Path(mounts(envoy)["/etc/envoy/envoy.yaml"]["source"]).read_text()
    files = {target: source.read_bytes() for target, source in secret_files(model, envoy).items()}
    # Envoy holds no API key material: keys are the services' business.
    assert not set(files) & {CONTAINER_API_KEYS, CONTAINER_SERVICE_KEY}
    validate_envoy(config_text, files, tmp_path)


@pytest.mark.parametrize("profile", PROFILES)
def test_secured_compose_changes_nothing_but_security(profile: str, made_secrets: tuple[Path, str]) -> None:
    out, _ = made_secrets
    plain = compose_config(profile)["services"]
    for security in SECURED:
        for cpu in (False, True):
            secured = secured_compose(profile, security, out, cpu)["services"]
            if cpu:  # the CPU override still applies on top
                assert "devices" not in secured["ollama1"]["deploy"]["resources"].get("reservations", {})
                continue
            assert set(secured) == set(plain)
            for name, svc in secured.items():
                before = plain[name]
                env = svc.get("environment", {})
                added = {k: v for k, v in env.items() if before.get("environment", {}).get(k) != v}
                allowed = {"LLMMESH_API_KEYS_FILE", "LLMMESH_SERVICE_KEY_FILE", "LLMMESH_TLS_CERT",
                           "LLMMESH_TLS_KEY", "LLMMESH_TLS_CA", *(("LLMMESH_INFERENCE_TARGET",)
                                                                  if name in GATEWAY_NAMES else ())}
                assert set(added) <= allowed, (name, added)
                rest = {k: v for k, v in svc.items() if k not in ("environment", "secrets", "networks", "volumes")}
                assert rest == {k: v for k, v in before.items()
                                if k not in ("environment", "secrets", "networks", "volumes")}, name
                # Only Envoy's bootstrap is swapped; every other mount stays.
                changed = {t for t, v in mounts(svc).items() if mounts(before).get(t) != v}
                assert changed <= {"/etc/envoy/envoy.yaml"}, (name, changed)
                assert set(mounts(svc)) == set(mounts(before))


# --- Kubernetes ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built_overlays(made_secrets: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory
                   ) -> dict[Security, list[dict]]:
    """`kustomize build` of each overlay, in a copy of the repo's deploy/ and envoy/ with the
    secrets made above in secrets/ (where the overlays read them)."""
    command = kustomize_command()
    assert command is not None, "neither kustomize nor kubectl on PATH"
    repo = tmp_path_factory.mktemp("repo")
    shutil.copytree(DEPLOY, repo / "deploy")
    shutil.copytree(ROOT / "envoy", repo / "envoy")
    shutil.copytree(made_secrets[0], repo / "secrets")
    built = {}
    for security, overlay in {Security.NONE: "k8s", **OVERLAYS}.items():
        done = subprocess.run([*command, "--load-restrictor", "LoadRestrictionsNone", str(repo / "deploy" / overlay)],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        built[security] = [d for d in yaml.safe_load_all(done.stdout) if d]
    return built


def by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def generated(docs: list[dict], kind: str, name: str) -> dict:
    """A generated ConfigMap or Secret by its name without kustomize's hash suffix."""
    (found,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].rsplit("-", 1)[0] == name]
    return found


def pod_files(docs: list[dict], deployment: dict) -> dict[str, bytes]:
    """Every file a Deployment's container sees from a Secret volume: path -> content."""
    secrets = by_kind(docs, "Secret")
    spec = deployment["spec"]["template"]["spec"]
    volumes = {v["name"]: v["secret"] for v in spec.get("volumes", []) if "secret" in v}
    files = {}
    for m in spec["containers"][0].get("volumeMounts", []):
        if m["name"] in volumes:
            volume = volumes[m["name"]]
            data = secrets[volume["secretName"]]["data"]  # kustomize rewrote it to the hashed name
            # `items` projects some keys only, at paths of their own; without it, every key.
            paths = {i["key"]: i["path"] for i in volume["items"]} if "items" in volume else {k: k for k in data}
            files |= {f"{m['mountPath']}/{paths[k]}": base64.b64decode(v) for k, v in data.items() if k in paths}
    return files


def pod_env(docs: list[dict], deployment: dict) -> dict[str, str]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    configmaps = by_kind(docs, "ConfigMap")
    env = {}
    for ref in container.get("envFrom", []):
        env |= configmaps[ref["configMapRef"]["name"]]["data"]
    return env | {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def llmmesh_deployments(docs: list[dict]) -> dict[str, dict]:
    return {n: d for n, d in by_kind(docs, "Deployment").items()
            if d["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/name") == "llmmesh"}


@pytest.mark.parametrize("security", SECURED)
def test_k8s_overlay_mounts_what_the_settings_name(security: Security, built_overlays: dict[Security, list[dict]],
                                                   made_secrets: tuple[Path, str]) -> None:
    out, _ = made_secrets
    docs = built_overlays[security]
    assert all(d["metadata"].get("namespace") == "llmmesh" for d in docs if d["kind"] != "Namespace")
    auth = generated(docs, "Secret", "llmmesh-auth")
    assert {k: base64.b64decode(v) for k, v in auth["data"].items()} == {
        "api-keys.json": (out / "api-keys.json").read_bytes(), "service.key": (out / "service.key").read_bytes()}
    assert generated(docs, "Secret", "llmmesh-ingress-tls")["type"] == "kubernetes.io/tls"
    deployments = llmmesh_deployments(docs)
    # Every llmmesh Deployment of the base, whatever services it gains.
    assert set(deployments) == set(llmmesh_deployments(built_overlays[Security.NONE]))
    assert GATEWAY_NAMES < set(deployments)
    for name, dep in deployments.items():
        env, files = pod_env(docs, dep), pod_files(docs, dep)
        settings = Settings.from_env(env)
        if name in GATEWAY_NAMES:
            # It forwards its callers' keys: it gets the key file (its /mcp checks keys and filters
            # tools by scope), never the service key; it runs the patterns through Envoy's internal
            # listener, which the TLS ingress does not stand in front of.
            gateway = GatewaySettings.from_env(env)
            assert files[gateway.api_keys_file] == (out / "api-keys.json").read_bytes(), name
            assert CONTAINER_SERVICE_KEY not in files and b"" not in files.values(), name
            assert gateway.patterns_target == f"envoy:{INTERNAL_PORT}", name
        else:
            assert files[settings.auth.api_keys_file] == (out / "api-keys.json").read_bytes(), name
            assert files[settings.auth.service_key_file] == (out / "service.key").read_bytes(), name
        assert settings.tls == (CONTAINER_MESH_TLS if security is Security.MTLS else ServiceTlsSettings())
        if settings.tls.enabled:
            assert files[settings.tls.cert_file] == (out / "mesh.crt").read_bytes(), name
            assert files[settings.tls.ca_file] == (out / "ca.crt").read_bytes(), name
        # The secret files are readable by the pod's group (fsGroup) alone, and the non-root user is in it.
        spec = dep["spec"]["template"]["spec"]
        secret_volumes = [v["secret"] for v in spec["volumes"] if "secret" in v]
        if secret_volumes:
            assert spec["securityContext"]["fsGroup"] == spec["securityContext"]["runAsGroup"], name
            assert {v["defaultMode"] for v in secret_volumes} == {0o440}, name
        probes = [spec["containers"][0][p] for p in ("startupProbe", "readinessProbe", "livenessProbe")
                  if p in spec["containers"][0]]
        if security is Security.MTLS:
            # The kubelet's grpc and httpGet probes cannot present the mesh certificate.
            assert probes and all("grpc" not in p and "httpGet" not in p for p in probes), name
            assert all(p["exec"]["command"][:3] == ["python", "-m", "llmmesh.framework.healthcheck"] for p in probes)
        else:
            assert not any("exec" in p for p in probes), name


@pytest.mark.parametrize("security", SECURED)
def test_k8s_overlay_envoy_validates_with_its_mounted_certificates(
        security: Security, built_overlays: dict[Security, list[dict]], tmp_path: Path) -> None:
    docs = built_overlays[security]
    config = generated(docs, "ConfigMap", "envoy-config")
    # The same rendered file compose mounts (one bootstrap for both, as without security).
    rendered = ROOT / "envoy" / compose_example_name(Shape.MICROSERVICES, security)
    assert config["data"]["envoy.yaml"] == rendered.read_text()
    envoy = by_kind(docs, "Deployment")["envoy"]
    files = pod_files(docs, envoy)
    assert not set(files) & {CONTAINER_API_KEYS, CONTAINER_SERVICE_KEY}
    spec = envoy["spec"]["template"]["spec"]
    assert spec["securityContext"]["fsGroup"] == spec["securityContext"]["runAsGroup"]
    validate_envoy(config["data"]["envoy.yaml"], files, tmp_path)
    # The front door's port is TLS now.
    front = by_kind(docs, "Service")["llmmesh-ingress"]
    assert [p["appProtocol"] for p in front["spec"]["ports"]] == ["https"]


def test_overlays_read_the_secrets_from_the_directory_the_tool_writes() -> None:
    """Both deployments take the same files, from where deploy_secrets puts them by default."""
    names = set()
    for overlay in OVERLAYS.values():
        kustomization = yaml.safe_load((DEPLOY / overlay / "kustomization.yaml").read_text())
        for gen in kustomization["secretGenerator"]:
            for entry in gen["files"]:
                source = (DEPLOY / overlay / entry.split("=", 1)[1]).resolve()
                assert source.parent == ROOT / "secrets", entry
                names.add(source.name)
    compose_secrets = set()
    for path in (COMPOSE_SECURE_FILE, COMPOSE_MTLS_FILE):
        for secret in yaml.safe_load(path.read_text())["secrets"].values():
            compose_secrets.add(Path(secret["file"].replace("${LLMMESH_SECRETS_DIR:-./secrets}", "")).name)
    assert names == compose_secrets == {"api-keys.json", "service.key", "ingress.crt", "ingress.key", "ca.crt",
                                        "mesh.crt", "mesh.key"}
    assert "secrets/" in (ROOT / ".gitignore").read_text().splitlines()
