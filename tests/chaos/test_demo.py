"""./scripts/demo as a user runs it: it starts its own mesh on two simulators, tells every scenario,
reports each one PASS, exits 0, and leaves nothing running."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from tests.chaos.demo.scenarios import SCENARIOS
from tests.support.e2e import processes_where
from tests.support.venv import ROOT, shadow_venv

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.xdist_group("chaos_demo"), pytest.mark.timeout(300)]

# The demo takes well under a minute alone; a busy machine running other tests beside it is slower.
DEMO_TIMEOUT_S = 240


def test_scripts_demo_passes_every_scenario_and_stops_its_mesh(tmp_path: Path) -> None:
    env = {**os.environ, "LLMMESH_VENV": str(shadow_venv(tmp_path / "venv")), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([str(ROOT / "scripts" / "demo")], cwd=ROOT, env=env, text=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=DEMO_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)  # the demo stops its mesh on SIGTERM
        out, err = proc.communicate(timeout=60)
        pytest.fail(f"scripts/demo still running after {DEMO_TIMEOUT_S} s:\n{out[-6000:]}\n{err[-2000:]}")
    print(out)

    assert proc.returncode == 0, f"{out[-6000:]}\n{err[-3000:]}"
    passed = re.findall(r"^ +PASS  (.+) \(\d+\.\d s\)$", out, re.MULTILINE)
    assert passed == [s.title for s in SCENARIOS], out
    assert not re.search(r"^ +FAIL  ", out, re.MULTILINE), out
    assert f"demo: all {len(SCENARIOS)} scenarios passed" in out
    # Every scenario shows a command a user could run against the mesh.
    steps = re.split(r"^\[\d+/\d+\] ", out, flags=re.MULTILINE)[1:]
    assert len(steps) == len(SCENARIOS)
    assert all(re.search(r"^ +\$ (curl|grpcurl) ", step, re.MULTILINE) for step in steps), out

    # Its mesh is gone: no process was started with the demo's state directory (Envoy's config is in it).
    logs = re.search(r"^  logs +(\S+)/$", out, re.MULTILINE)
    assert logs, out
    state = str(Path(logs.group(1)).parent)
    assert not processes_where(lambda argv: any(state in a for a in argv))
