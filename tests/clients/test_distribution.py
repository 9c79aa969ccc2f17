"""The SDK is its own distribution (clients/pyproject.toml, `llmmesh-client`): `pip install ./clients`
into a fresh venv gives an SDK and a CLI that work without the server's package or its dependencies,
and the two source trees import nothing of each other."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from llmmesh.simulator.config import ScriptRule
from tests.clients.cli_proc import cli_env, run_cli
from tests.clients.support import sim, target

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = ROOT / "clients"
# What only the server needs: none of it may come with the SDK.
SERVER_ONLY = {"llmmesh", "aiohttp", "prometheus-client", "pyyaml", "jsonschema", "httpx", "redis"}
# Run in the SDK's venv: what is installed, what imports, and from where.
PROBE = """
import importlib.metadata, importlib.util, json
import llmmesh_client
from llmmesh_client import LlmMesh, judge_pb2
print(json.dumps({
    "dists": [d.metadata["Name"] for d in importlib.metadata.distributions()],
    "server_importable": importlib.util.find_spec("llmmesh") is not None,
    "sdk": llmmesh_client.__file__,
    "stubs": judge_pb2.__name__,
}))
"""


def standalone_env() -> dict[str, str]:
    """No LLMMESH_* setting and no PYTHONPATH: the venv sees only what was installed into it."""
    env = cli_env()
    for name in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
        env.pop(name, None)
    return env


@pytest.fixture
def sdk_venv(tmp_path: Path) -> Path:
    """A fresh venv holding `pip install ./clients` and nothing else (from a copy of clients/: pip
    builds in the source tree). pip's own cache keeps the dependencies' downloads to one."""
    source = tmp_path / "clients"
    shutil.copytree(CLIENTS, source, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
    venv = tmp_path / "venv"
    for cmd in ([sys.executable, "-m", "venv", str(venv)],
                [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "install", "-q",
                 str(source)]):
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=tmp_path, env=standalone_env())
        assert done.returncode == 0, done.stdout + done.stderr
    return venv


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


async def test_sdk_installs_and_works_without_the_server(sdk_venv: Path, inference_mesh) -> None:
    # -I: neither the working directory nor PYTHON* variables on sys.path.
    probe = await run_cli(cli=[str(sdk_venv / "bin" / "python"), "-I", "-c", PROBE], env=standalone_env())
    assert probe.code == 0, probe.err
    found = json.loads(probe.out)
    dists = {normalized(d) for d in found["dists"]}
    assert "llmmesh-client" in dists and not dists & SERVER_ONLY, sorted(dists)
    assert not found["server_importable"]
    # The installed copy with its own stubs, not the checkout's source tree.
    assert Path(found["sdk"]).is_relative_to(sdk_venv), found["sdk"]
    assert found["stubs"] == "llmmesh_client._proto.llmmesh.judge.v1.judge_service_pb2"

    cli = [str(sdk_venv / "bin" / "llmmesh")]
    usage = await run_cli("--help", cli=cli, env=standalone_env())
    assert usage.code == 0 and "generate" in usage.out and "judge" in usage.out, usage.err
    # The CLI from that venv, against a real server of this checkout.
    rule = ScriptRule(match="sky", response="Rayleigh scattering.")
    async with inference_mesh(sim(rule)) as m:
        answer = await run_cli("generate", "Why is the sky blue?", "--target", target(m), cli=cli,
                               env=standalone_env())
        health = await run_cli("--json", "health", "--target", target(m), "--service", "inference", cli=cli,
                               env=standalone_env())
    assert (answer.code, answer.out) == (0, "Rayleigh scattering.\n"), answer.err
    assert health.code == 0 and json.loads(health.out)["inference"] == "SERVING", health.out + health.err


def imported_modules(tree: Path, skip: str | None = None) -> dict[str, set[str]]:
    """Top-level packages each hand-written module under `tree` imports (`skip`: a folder left out)."""
    found = {}
    for path in tree.rglob("*.py"):
        if skip and skip in path.relative_to(tree).parts:
            continue
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


def test_sdk_and_server_import_nothing_of_each_other() -> None:
    sdk = imported_modules(CLIENTS / "llmmesh_client", skip="_proto")
    server = imported_modules(ROOT / "servers" / "llmmesh")
    assert len(sdk) > 10 and len(server) > 50
    assert [path for path, names in sdk.items() if "llmmesh" in names] == []
    assert [path for path, names in server.items() if "llmmesh_client" in names] == []
    # The SDK's stubs import each other inside its own package.
    stubs = imported_modules(CLIENTS / "llmmesh_client" / "_proto")
    assert "llmmesh_client" in stubs["clients/llmmesh_client/_proto/llmmesh/judge/v1/judge_service_pb2.py"]
    assert not [path for path, names in stubs.items() if "llmmesh" in names]
