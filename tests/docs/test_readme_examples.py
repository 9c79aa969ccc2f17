"""The README's copy-paste examples, run as written against a live mesh (ports substituted)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.mesh import running_mesh

pytestmark = pytest.mark.xdist_group("readme")

README = Path(__file__).resolve().parents[2] / "README.md"


def use_it_commands() -> list[str]:
    """Shell commands from the bash blocks of the "Use it" section, continuation lines joined."""
    section = README.read_text().split("## Use it", 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", section, re.S):
        joined = block.replace("\\\n", " ")
        commands += [ln.strip() for ln in joined.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    return commands


def test_readme_has_examples_for_each_kind() -> None:
    commands = use_it_commands()
    assert any(c.startswith("grpcurl") and " list" in c for c in commands)
    assert any(c.startswith("grpcurl") and " describe " in c for c in commands)
    assert any(c.startswith("curl -sN") for c in commands)  # SSE


def test_readme_examples_run_against_the_mesh(tmp_path) -> None:
    with running_mesh(tmp_path, backend="sim") as mesh:
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
        for command in use_it_commands():
            command = command.replace("localhost:8080", f"127.0.0.1:{mesh.options.ingress_port}")
            result = subprocess.run(command, shell=True, capture_output=True, text=True, env=env, timeout=60)
            assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
            out = result.stdout
            assert out.strip(), command
            assert '"code"' not in out or '"code": 0' in out, f"{command} answered an error:\n{out}"
            if command.startswith("curl -sN"):
                frames = [ln for ln in out.splitlines() if ln.startswith("data: ")]
                assert frames and '"done"' in frames[-1], out
