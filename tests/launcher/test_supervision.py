"""The launcher's supervisor on real child processes (small Python programs): a crashed child is
restarted on the same argv, environment and log after a doubling backoff, reported once its ready
probe passes; one that keeps crashing, or cannot bind its port, is given up on, and the supervisor
says whether the mesh can go on (a replica of it is left) or not."""

from __future__ import annotations

import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from llmmesh.launcher.procs import Child, Supervisor
from llmmesh.launcher.restarts import CrashHistory, RestartPolicy
from tests.support.ports import free_port

FAST = RestartPolicy(first_delay_s=0.1, max_delay_s=0.2, stable_after_s=30.0, give_up_after=4)
SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]
# Prints what a misconfigured server prints, then exits at once, every time.
CRASHER = [sys.executable, "-c", "import sys; print('config error: no listener named ingress'); sys.exit(3)"]


def supervisor(tmp_path: Path, policy: RestartPolicy = FAST) -> tuple[Supervisor, list[str]]:
    said: list[str] = []
    return Supervisor(tmp_path / "logs", policy, report=said.append), said


def watch_until(sup: Supervisor, done: Callable[[], bool], timeout_s: float = 20.0) -> Child | None:
    """Run the supervision loop as the launcher does until `done()`; what the last pass returned."""
    deadline = time.monotonic() + timeout_s
    while True:
        lost = sup.watch()
        if lost is not None or done():
            return lost
        assert time.monotonic() < deadline, "supervisor did not get there in time"
        time.sleep(0.02)


@pytest.fixture
def stop_after():
    sups: list[Supervisor] = []
    yield sups.append
    for sup in sups:
        sup.stop_all(grace_s=2)


def test_backoff_doubles_up_to_its_cap_and_gives_up_after_crashes_in_a_row() -> None:
    history = CrashHistory(RestartPolicy(first_delay_s=0.5, max_delay_s=3.0, stable_after_s=10, give_up_after=6))
    assert [history.crashed(uptime_s=1) for _ in range(6)] == [0.5, 1.0, 2.0, 3.0, 3.0, None]


def test_a_child_that_stayed_up_a_while_starts_over_at_the_first_delay() -> None:
    history = CrashHistory(RestartPolicy(first_delay_s=0.5, stable_after_s=10, give_up_after=3))
    assert [history.crashed(uptime_s=1), history.crashed(uptime_s=1)] == [0.5, 1.0]
    assert history.crashed(uptime_s=10) == 0.5  # recovered: a first crash again, not the third
    assert history.in_a_row == 1


def test_a_killed_child_comes_back_with_the_same_argv_env_and_log(tmp_path: Path, stop_after) -> None:
    sup, said = supervisor(tmp_path)
    stop_after(sup)
    marker = tmp_path / "ready"
    argv = [sys.executable, "-c", "import os, pathlib, time; print('run', os.environ['WHO'], flush=True);"
            f"pathlib.Path({str(marker)!r}).write_text(str(os.getpid())); time.sleep(120)"]
    ready = lambda: marker.exists() and marker.read_text() == str(child.proc.pid)  # noqa: E731
    child = sup.start("sim2", argv, {"WHO": "sim2"}, group="backends", ready=ready)
    sup.wait_ready(child, ready, 10)
    first_pid = child.proc.pid

    child.proc.send_signal(signal.SIGKILL)
    child.proc.wait(5)
    assert watch_until(sup, lambda: said and "is back" in said[-1]) is None
    assert said[0] == "restarting sim2 (exited with -9), attempt 1 in 0.1 s"
    assert said[1] == f"sim2 is back (pid {child.proc.pid}, restart 1)"
    assert child.alive() and child.proc.pid != first_pid and sup.children == [child]
    # One log for both runs: what the crashed run wrote is still there, then the restart's.
    log = child.log_path.read_text().splitlines()
    assert log == ["run sim2", "--- llmmesh: restart 1 of sim2 ---", "run sim2"]


def test_a_replica_that_keeps_crashing_is_given_up_while_the_other_serves(tmp_path: Path, stop_after) -> None:
    sup, said = supervisor(tmp_path)
    stop_after(sup)
    survivor = sup.start("judge-1", SLEEPER, group="judge")
    victim = sup.start("judge-2", SLEEPER, group="judge")
    victim.proc.send_signal(signal.SIGKILL)
    victim.proc.wait(5)
    victim.argv = tuple(CRASHER)  # from now on it cannot start (a config broken under it)

    assert watch_until(sup, lambda: bool(victim.gave_up)) is None  # not essential: the mesh goes on
    # (Without a ready probe a restarted child counts as back once it runs: "is back" lines between.)
    restarts = [m for m in said if m.startswith("restarting")]
    assert restarts == ["restarting judge-2 (exited with -9), attempt 1 in 0.1 s",
                        "restarting judge-2 (exited with 3), attempt 2 in 0.2 s",
                        "restarting judge-2 (exited with 3), attempt 3 in 0.2 s"]
    verdict = said[-1]
    assert verdict.startswith("giving up on judge-2: exited with 3, 4 times in a row within 30 s of starting; "
                              "judge-1 still serving. Its last run's last lines in "), verdict
    assert "config error: no listener named ingress" in verdict  # why, from its own log
    assert survivor.alive() and not victim.alive()
    # Given up means left alone: no more restarts, no more messages.
    count = len(said)
    for _ in range(10):
        assert sup.watch() is None
        time.sleep(0.03)
    assert len(said) == count and not victim.alive()


def test_an_essential_child_given_up_stops_the_mesh(tmp_path: Path, stop_after) -> None:
    sup, said = supervisor(tmp_path)
    stop_after(sup)
    sup.start("gateway", SLEEPER)
    envoy = sup.start("envoy", CRASHER)

    lost = watch_until(sup, lambda: False)
    assert lost is envoy
    assert len([m for m in said if m.startswith("restarting envoy")]) == 3
    assert said[-1].startswith("giving up on envoy: exited with 3, 4 times in a row within 30 s of starting; "
                               "the mesh cannot run without it, stopping everything."), said[-1]
    assert "config error: no listener named ingress" in said[-1]


def test_a_child_whose_port_is_taken_is_given_up_at_once(tmp_path: Path, stop_after) -> None:
    sup, said = supervisor(tmp_path)
    stop_after(sup)
    port = free_port()
    server = [sys.executable, "-c", f"import socket, time; s = socket.create_server(('127.0.0.1', {port})); "
              "time.sleep(120)"]
    sup.start("sim1", SLEEPER, group="backends")
    sim2 = sup.start("sim2", server, group="backends")
    # It holds the port; killed, its port is taken by someone else before its restart.
    time.sleep(0.3)
    sim2.proc.send_signal(signal.SIGKILL)
    sim2.proc.wait(5)
    with socket.create_server(("127.0.0.1", port)):
        assert watch_until(sup, lambda: bool(sim2.gave_up)) is None
    said = [m for m in said if "is back" not in m]
    assert said[0] == "restarting sim2 (exited with -9), attempt 1 in 0.1 s"
    assert len(said) == 2, said  # no second attempt: a port someone else holds stays taken
    assert said[1].startswith("giving up on sim2: exited with 1: its port cannot be bound (another process holds "
                              "it); sim1 still serving."), said[1]
    assert "Address already in use" in said[1]
