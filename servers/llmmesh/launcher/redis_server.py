"""The redis-server `up --redis` runs: the store the services share their rate limits, token budgets
and response cache through (LLMMESH_REDIS_URL, set by mesh_plan). Loopback only, no persistence
(limits and cache are fine to lose with the run), bounded in memory with LRU eviction."""

from __future__ import annotations

import shutil
import socket
from functools import partial
from pathlib import Path

from llmmesh.launcher.procs import Child, LaunchError, Supervisor

MAX_MEMORY = "256mb"


def redis_argv(binary: str, port: int, state_dir: Path) -> list[str]:
    return [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(state_dir.resolve()),
            "--save", "", "--appendonly", "no", "--maxmemory", MAX_MEMORY, "--maxmemory-policy", "allkeys-lru"]


def redis_ping(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
        s.sendall(b"PING\r\n")
        return s.recv(16).startswith(b"+PONG")


def start_redis(sup: Supervisor, port: int, state_dir: Path) -> Child:
    binary = shutil.which("redis-server")
    if binary is None:
        raise LaunchError("--redis needs redis-server: apt-get install redis-server (./scripts/up installs it)")
    ready = partial(redis_ping, port)
    child = sup.start("redis", redis_argv(binary, port, state_dir), ready=ready)
    sup.wait_ready(child, ready, 15)
    return child
