"""`./scripts/up` as a user runs it, from a test: in a process group of its own (so a "Ctrl-C" reaches
exactly it), on free ports, with its console collected as it prints."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.e2e import wait_until
from tests.support.ports import free_port
from tests.support.signals import default_sigint
from tests.support.venv import shadow_venv

ROOT = Path(__file__).resolve().parents[2]
PORT_FLAGS = ("ingress", "admin", "egress", "internal", "grpc", "metrics", "backend", "gateway")


class Lines:
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


@dataclass(frozen=True)
class UpCommand:
    argv: list[str]
    env: dict[str, str]
    state: Path
    ports: dict[str, int]


def _backend_ports(count: int) -> int:
    """The first of `count` consecutive free ports (`--sims N` serves on backend_port + i)."""
    for _ in range(50):
        first = free_port()
        try:
            for port in range(first + 1, first + count):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return first
    raise AssertionError(f"no {count} consecutive free ports")


def up_command(tmp_path: Path, *args: str, sims: int = 1, env: dict[str, str] | None = None) -> UpCommand:
    """`./scripts/up --backend sim` on free ports with its state under `tmp_path`, plus `args`."""
    ports = {name: free_port() for name in PORT_FLAGS}
    ports["backend"] = _backend_ports(sims)
    state = tmp_path / "state"
    argv = ["--backend", "sim", "--state-dir", str(state), *(["--sims", str(sims)] if sims > 1 else []), *args]
    for name, port in ports.items():
        argv += [f"--{name}-port", str(port)]
    full_env = {**os.environ, "LLMMESH_VENV": str(shadow_venv(tmp_path / "venv")), "PYTHONUNBUFFERED": "1",
                **(env or {})}
    full_env.pop("LLMMESH_BACKENDS", None)
    return UpCommand(argv, full_env, state, ports)


@contextmanager
def scripts_up(argv: list[str], env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[str], Lines, Lines]]:
    proc = subprocess.Popen(
        [str(ROOT / "scripts" / "up"), *argv], cwd=ROOT, env=env, text=True, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        # Like a shell job: its own process group, with the default SIGINT disposition, so a
        # "Ctrl-C" reaches exactly this group.
        start_new_session=True, preexec_fn=default_sigint,
    )
    out, err = Lines(proc.stdout), Lines(proc.stderr)
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


def wait_for_banner(proc: subprocess.Popen[str], out: Lines, err: Lines, timeout_s: float = 90) -> None:
    def banner() -> bool:
        assert proc.poll() is None, f"scripts/up exited with {proc.returncode}:\n{err.text}"
        return "llmmesh is up" in out.text and "Ctrl-C stops everything." in out.text

    wait_until(banner, timeout_s, "the 'llmmesh is up' banner", interval_s=0.1)
