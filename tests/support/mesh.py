"""The whole mesh as `./scripts/up` runs it (backend, services, Envoy), on free ports, for e2e tests."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from llmmesh.launcher.procs import Child, LaunchError
from llmmesh.launcher.up import WATCH_INTERVAL_S, Mesh, UpOptions, start_mesh
from llmmesh.topology.description import Shape
from tests.support.ports import free_port


def free_options(state_dir: Path, backend: str = "sim", shape: Shape = Shape.MONOLITH, **overrides) -> UpOptions:
    opts = UpOptions(backend=backend, shape=shape, ingress_port=free_port(), admin_port=free_port(),
                     egress_port=free_port(), internal_port=free_port(), grpc_port=free_port(),
                     metrics_port=free_port(), backend_port=free_port(), state_dir=state_dir, port_allocator=free_port)
    return dataclasses.replace(opts, **overrides)


def start_on_free_ports(state_dir: Path, backend: str = "sim", attempts: int = 3, **overrides) -> Mesh:
    """free_port() hands out a port that was free a moment ago; another process may take it before
    ours binds. A start that failed on a bind is retried on fresh ports."""
    for attempt in range(1, attempts + 1):
        try:
            return start_mesh(free_options(state_dir, backend, **overrides))
        except LaunchError as exc:
            text = str(exc).lower()
            if attempt == attempts or not ("bind" in text or "address already in use" in text):
                raise
    raise AssertionError("unreachable")


@contextmanager
def running_mesh(state_dir: Path, backend: str = "sim", **overrides) -> Iterator[Mesh]:
    """Start the mesh and stop every process afterwards, whatever the test did."""
    mesh = start_on_free_ports(state_dir, backend, **overrides)
    try:
        yield mesh
    finally:
        mesh.stop()


@contextmanager
def supervising(mesh: Mesh) -> Iterator[list[Child]]:
    """The launcher's supervision loop beside the test, as `./scripts/up` runs it: crashed children
    come back (reported in <state>/logs/launcher.log). Yields the children it gave up on as essential."""
    lost: list[Child] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(WATCH_INTERVAL_S):
            if (child := mesh.supervisor.watch()) is not None:
                lost.append(child)
                return

    thread = threading.Thread(target=loop, name="supervisor", daemon=True)
    thread.start()
    try:
        yield lost
    finally:
        stop.set()
        thread.join(10)


@contextmanager
def scripted_mesh(state_dir: Path, rules: list[dict]) -> Iterator[Mesh]:
    """A simulator-backed mesh whose simulator answers by `rules` (replacing its demo scripts)."""
    with running_mesh(state_dir, backend="sim") as mesh:
        resp = httpx.put(f"http://127.0.0.1:{mesh.options.backend_port}/_sim/scripts", json={"rules": rules},
                         timeout=10)
        resp.raise_for_status()
        yield mesh
