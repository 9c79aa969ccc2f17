"""`./scripts/up` itself, and the microservices shape (eight service processes, two of them
judges). Both are heavy, and live in their own xdist group, apart from the foundation's mesh.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import signal
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from llmmesh.topology.description import SERVICES, Shape
from tests.support.e2e import (
    GRPCURL,
    cmdline,
    descendants,
    environ,
    grpcurl,
    processes_where,
    run,
    sse_events,
    wait_until,
)
from tests.support.mesh import running_mesh
from tests.support.ports import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e_launcher")]

ROOT = Path(__file__).resolve().parents[2]
REAL_VENV = ROOT / ".venv"


# --- ./scripts/up -----------------------------------------------------------------------------


def _shadow_venv(where: Path) -> Path:
    """A venv for LLMMESH_VENV whose python runs the project's real venv, stamped as up to date.

    scripts/up bootstraps first: with a stale stamp (pyproject.toml edited since the last
    `./scripts/test`) it would pip-install into .venv from inside a test. Here the bootstrap runs
    for real but finds its stamp current, and its python refuses `-m pip` outright, so a change in
    the bootstrap's stamp scheme fails this test loudly instead of installing anything.
    """
    bin_dir = where / "bin"
    bin_dir.mkdir(parents=True)
    python = bin_dir / "python"
    python.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then\n'
        '  echo "e2e: refusing to pip-install into the real venv from a test" >&2; exit 97\n'
        "fi\n"
        f'exec "{REAL_VENV / "bin" / "python"}" "$@"\n'
    )
    python.chmod(0o755)
    for tool in ("envoy", "grpcurl"):
        (bin_dir / tool).symlink_to(REAL_VENV / "bin" / tool)
    # Same key as scripts/lib/bootstrap.sh: the first 16 hex digits of the sha256 of the server's
    # and the SDK's pyproject.toml, one after the other.
    both = (ROOT / "pyproject.toml").read_bytes() + (ROOT / "clients" / "pyproject.toml").read_bytes()
    key = hashlib.sha256(both).hexdigest()[:16]
    (where / ".stamp-dev").write_text(key + "\n")
    return where


class _Lines:
    """Collects a pipe's lines on a thread, so neither pipe can fill up and block the launcher."""

    def __init__(self, pipe) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._pump, args=(pipe,), daemon=True)
        self._thread.start()

    def _pump(self, pipe) -> None:
        for line in pipe:
            self.lines.append(line)

    @property
    def text(self) -> str:
        return "".join(self.lines)


@contextmanager
def _scripts_up(argv: list[str], env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[str], _Lines, _Lines]]:
    proc = subprocess.Popen(
        [str(ROOT / "scripts" / "up"), *argv], cwd=ROOT, env=env, text=True, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        # Like a shell job: its own process group, with the default SIGINT disposition (a test
        # runner may have inherited SIGINT ignored), so a "Ctrl-C" reaches exactly this group.
        start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    out, err = _Lines(proc.stdout), _Lines(proc.stderr)
    try:
        yield proc, out, err
    finally:
        if proc.poll() is None:  # the test failed before stopping it: do not leak the mesh
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


def test_scripts_up_serves_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("ingress", "admin", "egress", "grpc", "metrics", "backend", "gateway")}
    state = tmp_path / "state"
    argv = ["--backend", "sim", "--state-dir", str(state)]
    for name, port in ports.items():
        argv += [f"--{name}-port", str(port)]
    env = {**os.environ, "LLMMESH_VENV": str(_shadow_venv(tmp_path / "venv")), "PYTHONUNBUFFERED": "1"}
    env.pop("LLMMESH_BACKENDS", None)

    with _scripts_up(argv, env) as (proc, out, err):
        def banner() -> bool:
            assert proc.poll() is None, f"scripts/up exited with {proc.returncode}:\n{err.text}"
            return "llmmesh is up" in out.text and "Ctrl-C stops everything." in out.text

        wait_until(banner, 90, "the 'llmmesh is up' banner", interval_s=0.1)
        printed = out.text
        assert "monolith shape, backend: sim" in printed
        assert re.search(rf"gRPC \+ REST\s+localhost:{ports['ingress']}\b", printed), printed

        # The banner's own commands work, as printed (curl and grpcurl against localhost).
        curl_line = next(ln.strip() for ln in printed.splitlines() if ln.strip().endswith("/api/v1/inference/models"))
        assert curl_line == f"curl -s localhost:{ports['ingress']}/api/v1/inference/models"
        models = run([*shlex.split(curl_line), "--max-time", "30"])
        assert models.returncode == 0, models.stderr
        assert any(m["backends"] == ["sim"] for m in json.loads(models.stdout)["models"]), models.stdout
        grpcurl_line = next(ln.strip() for ln in printed.splitlines() if ln.strip().startswith("grpcurl "))
        listed = run([GRPCURL, *shlex.split(grpcurl_line)[1:]])
        assert listed.returncode == 0, listed.stderr
        assert {s.grpc_service for s in SERVICES} <= set(listed.stdout.split())
        stream = httpx.post(f"http://127.0.0.1:{ports['ingress']}/api/v1/inference/generate",
                            json={"prompt": "up", "options": {"max_tokens": 3}}, timeout=30)
        assert [next(iter(e)) for e in sse_events(stream.text)] == ["delta"] * 3 + ["done"]

        # What scripts/up started: the simulator, Envoy, the monolith and the HTTP gateway, nothing else.
        children = descendants(proc.pid)
        argvs = [" ".join(a) for a in children.values()]
        assert len(children) == 4, argvs
        assert sum("llmmesh.gateway.main" in a for a in argvs) == 1, argvs
        assert sum("llmmesh.simulator.main" in a for a in argvs) == 1, argvs
        assert sum("llmmesh.framework.main" in a for a in argvs) == 1, argvs
        assert sum(str(state / "envoy.yaml") in a for a in argvs) == 1, argvs

        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:
            pytest.fail(f"scripts/up still running 30 s after SIGINT:\n{err.text}")
        assert code == 0, err.text
        assert "llmmesh: stopping" in err.text

    # No child survives: neither the PIDs seen above (a reused PID with another command line does
    # not count) nor anything else started with this run's state dir.
    survivors = {pid: argv for pid, argv in children.items() if cmdline(pid) == argv}
    assert not survivors, survivors
    assert not processes_where(lambda argv: any(str(state) in a for a in argv))


# --- the microservices shape ------------------------------------------------------------------


def test_microservices_shape_with_two_judges(tmp_path: Path) -> None:
    # running_mesh gives every process a free port (the topology's fixed 50051-50057 lie inside
    # Linux's ephemeral range, where a busy machine's client sockets may hold one).
    replicas = {"judge": 2}
    # A short drain keeps the stop quick.
    fast_drain = {"LLMMESH_DRAIN_DELAY_S": "0.2"}

    with running_mesh(tmp_path / "mesh", backend="sim", shape=Shape.MICROSERVICES, replicas=replicas,
                      service_env=fast_drain) as mesh:
        started = [c.proc for c in mesh.supervisor.children]
        names = {c.name for c in mesh.supervisor.children}
        services = {n for n in names if n not in ("envoy", "gateway") and not n.startswith("simulator")}
        assert services == {"judge-1", "judge-2"} | {s.name for s in SERVICES if s.name != "judge"}, names
        assert "envoy" in names

        listed = grpcurl("-plaintext", mesh.ingress, "list")
        assert listed.returncode == 0, listed.stderr
        assert {s.grpc_service for s in SERVICES} <= set(listed.stdout.split())

        clusters = httpx.get(f"http://127.0.0.1:{mesh.options.admin_port}/clusters", timeout=10).text
        hosts: dict[str, dict[str, str]] = {}
        for line in clusters.splitlines():
            if line.startswith("svc_") and "::health_flags::" in line:
                cluster, host, _, flags = line.split("::", 3)
                hosts.setdefault(cluster, {})[host] = flags
        planned: dict[str, dict[str, str]] = {}
        for p in mesh.plan:
            planned.setdefault(f"svc_{p.services}", {})[f"127.0.0.1:{p.port}"] = "healthy"
        assert len(planned["svc_judge"]) == 2
        assert hosts == planned, clusters

        # Pattern services are wired to the inference service's own process.
        target = f"127.0.0.1:{next(p.port for p in mesh.plan if p.services == 'inference')}"
        for child in mesh.supervisor.children:
            if child.name in services - {"inference"}:
                assert environ(child.proc.pid)["LLMMESH_INFERENCE_TARGET"] == target, child.name

        with httpx.Client(base_url=f"http://{mesh.ingress}", timeout=30) as rest:
            stream = rest.post("/api/v1/inference/generate", json={"prompt": "hi", "options": {"max_tokens": 3}})
            assert stream.status_code == 200
            assert stream.headers["content-type"] == "text/event-stream"
            events = sse_events(stream.text)
            assert [next(iter(e)) for e in events] == ["delta"] * 3 + ["done"]
            assert events[-1]["done"]["backend"] == "sim"
            # The judge's own processes answer its REST path (UNIMPLEMENTED until issue 4), not a 503.
            judged = rest.post("/api/v1/judge/evaluate", json={"question": "q", "answer": "a"})
            assert judged.status_code in (200, 501), judged.text

    # Everything stopped with the mesh (stop_all waited for each one).
    assert all(proc.poll() is not None for proc in started)
