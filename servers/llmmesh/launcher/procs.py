"""A small process supervisor: start children with logs in files, wait until they are ready, restart
one that crashes (same argv and environment, so the same ports) after a backoff, give up on one that
keeps crashing, and stop them all in reverse order (SIGTERM, then SIGKILL after a grace)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from llmmesh.launcher.restarts import CrashHistory, RestartPolicy, bind_failure

# Enough of a log's end for its last lines (Envoy's access log makes its file large).
_TAIL_BYTES = 64 * 1024


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
    # How to start it again as it was.
    argv: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    # Children that stand in for one another (a service's replicas, the model backends): the mesh
    # goes on without one of them while another is left. A group of one is essential.
    group: str = ""
    # Answers True once a (re)started process serves; None: serving once started.
    ready: Callable[[], bool] | None = None
    crashes: CrashHistory = field(default_factory=lambda: CrashHistory(RestartPolicy()))
    started_at: float = field(default_factory=time.monotonic)
    # Where this run's output starts in the log (a restart appends to it).
    log_offset: int = 0
    restart_at: float | None = None  # crashed; start again at this time.monotonic()
    restarted: bool = False  # restarted and not yet reported ready
    gave_up: str = ""  # why it is not restarted any more

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 25, since_start: bool = False) -> str:
        """The last `lines` of its log (of this run only with `since_start`)."""
        try:
            with open(self.log_path, "rb") as f:
                size = f.seek(0, os.SEEK_END)
                f.seek(max(self.log_offset if since_start else 0, size - _TAIL_BYTES))
                text = f.read().decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _spawn(argv: Sequence[str], env: Mapping[str, str], log_path: Path,
           append: bool) -> tuple[subprocess.Popen[bytes], int]:
    """The process, and where its output starts in the log."""
    with open(log_path, "ab" if append else "wb") as log:
        # Own session: a terminal Ctrl-C reaches only us, and we stop children in order.
        proc = subprocess.Popen(list(argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, **env}, start_new_session=True)
        return proc, log.tell()


class Supervisor:
    def __init__(self, log_dir: Path, policy: RestartPolicy | None = None,
                 report: Callable[[str], None] | None = None) -> None:
        self.log_dir = log_dir
        self.policy = policy or RestartPolicy()
        self.children: list[Child] = []
        self._report = report or self._say
        log_dir.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None, stage: int = 0, *,
              group: str = "", ready: Callable[[], bool] | None = None) -> Child:
        log_path = self.log_dir / f"{name}.log"
        proc, _ = _spawn(argv, env or {}, log_path, append=False)
        child = Child(name, proc, log_path, stage, tuple(argv), dict(env or {}), group or name, ready,
                      CrashHistory(self.policy))
        # Started again by hand under its name (a chaos drill): the new process replaces the dead one.
        self.children = [c for c in self.children if c.name != name or c.alive()]
        self.children.append(child)
        return child

    def wait_ready(self, child: Child, check: Callable[[], bool], timeout_s: float, what: str = "") -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not child.alive():
                raise LaunchError(f"{child.name} exited with {child.proc.returncode} while starting:\n"
                                  f"{child.log_tail()}")
            if _probe(check):
                return
            time.sleep(0.1)
        raise LaunchError(f"{child.name} not ready after {timeout_s:.0f}s{' (' + what + ')' if what else ''}:\n"
                          f"{child.log_tail()}")

    def first_dead(self) -> Child | None:
        return next((c for c in self.children if not c.alive()), None)

    def watch(self) -> Child | None:
        """One supervision pass, a few times a second once the mesh is up: note crashes, restart
        each crashed child when its backoff is over, report restarted ones ready again, give up on
        one that keeps crashing. Returns a child given up on that had no replica left: the mesh
        cannot go on without it."""
        now = time.monotonic()
        for child in list(self.children):
            if child.gave_up:
                continue
            if child.restart_at is not None:
                if now >= child.restart_at:
                    self._restart(child)
            elif child.alive():
                if child.restarted and (child.ready is None or _probe(child.ready)):
                    child.restarted = False
                    self._report(f"{child.name} is back (pid {child.proc.pid}, restart {child.crashes.in_a_row})")
            elif self._crashed(child, now):
                return child
        return None

    def _crashed(self, child: Child, now: float) -> bool:
        """Schedule its restart, or give up on it; True when nothing stands in for it."""
        code = child.proc.returncode
        delay = child.crashes.crashed(now - child.started_at)
        if bind_failure(child.log_tail(since_start=True)):
            child.gave_up = f"exited with {code}: its port cannot be bound (another process holds it)"
        elif delay is None:
            child.gave_up = (f"exited with {code}, {child.crashes.in_a_row} times in a row within "
                             f"{self.policy.stable_after_s:g} s of starting")
        else:
            child.restart_at = now + delay
            self._report(f"restarting {child.name} (exited with {code}), attempt {child.crashes.in_a_row} "
                         f"in {delay:.1f} s")
            return False
        stand_ins = [c.name for c in self.children if c.group == child.group and c is not child and not c.gave_up]
        outcome = (f"{', '.join(stand_ins)} still serving" if stand_ins
                   else "the mesh cannot run without it, stopping everything")
        self._report(f"giving up on {child.name}: {child.gave_up}; {outcome}. "
                     f"Its last run's last lines in {child.log_path}:\n{child.log_tail(15, since_start=True)}")
        return not stand_ins

    def _restart(self, child: Child) -> None:
        child.restart_at = None
        with open(child.log_path, "ab") as log:
            log.write(f"--- llmmesh: restart {child.crashes.in_a_row} of {child.name} ---\n".encode())
        child.proc, child.log_offset = _spawn(child.argv, child.env, child.log_path, append=True)
        child.started_at = time.monotonic()
        child.restarted = True

    def _say(self, message: str) -> None:
        """On the launcher's console and in its own log, next to its children's."""
        line = f"llmmesh: {message}"
        print(line, file=sys.stderr, flush=True)
        with open(self.log_dir / "launcher.log", "a") as log:
            log.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {line}\n")

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


def _probe(check: Callable[[], bool]) -> bool:
    try:
        return bool(check())
    except Exception:  # not up yet: connection refused and the like
        return False
