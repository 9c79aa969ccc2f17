"""A small process supervisor: start children with logs in files, wait until they are ready,
notice when one dies, stop them all in reverse order (SIGTERM, then SIGKILL after a grace)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


class LaunchError(RuntimeError):
    pass


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    # Higher stages stop first, all children of a stage at once (services drain in parallel
    # while the proxy in front of them still carries their in-flight streams).
    stage: int = 0

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Supervisor:
    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.children: list[Child] = []
        log_dir.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None, stage: int = 0) -> Child:
        log_path = self.log_dir / f"{name}.log"
        with open(log_path, "wb") as log:
            # Own session: a terminal Ctrl-C reaches only us, and we stop children in order.
            proc = subprocess.Popen(list(argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env={**os.environ, **(env or {})}, start_new_session=True)
        child = Child(name, proc, log_path, stage)
        self.children.append(child)
        return child

    def wait_ready(self, child: Child, check: Callable[[], bool], timeout_s: float, what: str = "") -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not child.alive():
                raise LaunchError(f"{child.name} exited with {child.proc.returncode} while starting:\n"
                                  f"{child.log_tail()}")
            try:
                if check():
                    return
            except Exception:  # not up yet: connection refused and the like
                pass
            time.sleep(0.1)
        raise LaunchError(f"{child.name} not ready after {timeout_s:.0f}s{' (' + what + ')' if what else ''}:\n"
                          f"{child.log_tail()}")

    def first_dead(self) -> Child | None:
        return next((c for c in self.children if not c.alive()), None)

    def stop_all(self, grace_s: float = 10.0) -> None:
        for stage in sorted({c.stage for c in self.children}, reverse=True):
            group = [c for c in self.children if c.stage == stage and c.alive()]
            for child in group:
                child.proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + grace_s
            for child in group:
                try:
                    child.proc.wait(max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    child.proc.kill()
                    child.proc.wait()
        self.children.clear()
