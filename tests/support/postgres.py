"""A real, throwaway PostgreSQL server for tests: `initdb` into a temporary directory, `postgres` on a
free loopback port (TCP only, no fsync), a fresh database per test. PostgreSQL refuses to run as
root, so as root both run as the unprivileged `nobody`, in a directory it owns.

    async def test_x(postgres_url: str) -> None:   # postgresql://postgres@127.0.0.1:PORT/t_…

The binaries come from Debian's `postgresql` package (scripts/test: ensure_postgres); they live in
/usr/lib/postgresql/<version>/bin, which is not on PATH.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.ports import free_port

NOBODY = 65534


def _binary(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)),
                                       None)
    if found is None:
        pytest.fail(f"PostgreSQL's {name} is not installed: apt-get install postgresql (scripts/test does it)")
    return found


class PostgresServer:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="llmmesh-pg-"))
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._as: dict[str, Any] = {}
        if os.geteuid() == 0:
            os.chown(self.dir, NOBODY, NOBODY)
            self._as = {"user": NOBODY, "group": NOBODY, "extra_groups": []}

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self, timeout_s: float = 30.0) -> None:
        data = self.dir / "data"
        subprocess.run([_binary("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync",
                        "-E", "UTF8", "--no-instructions"], check=True, capture_output=True, timeout=120,
                       cwd=self.dir, **self._as)
        log = open(self.dir / "postgres.log", "wb")  # the server keeps writing it; ours closes below
        self.proc = subprocess.Popen(
            [_binary("postgres"), "-D", str(data), "-p", str(self.port), "-c", "listen_addresses=127.0.0.1",
             "-c", "unix_socket_directories=", "-c", "fsync=off", "-c", "synchronous_commit=off",
             "-c", "full_page_writes=off"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.dir, **self._as)
        log.close()
        deadline = time.monotonic() + timeout_s
        while not self._answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"postgres did not start:\n{self.log_tail()}")
            time.sleep(0.1)

    def _client(self, tool: str, *args: str) -> subprocess.CompletedProcess[bytes]:
        # The client tools, not asyncpg: tests call these from inside their own event loop.
        return subprocess.run([_binary(tool), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", *args],
                              capture_output=True, timeout=30)

    def _answers(self) -> bool:
        return self._client("pg_isready", "-q").returncode == 0

    def create_database(self) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        done = self._client("createdb", name)
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        return self.url(name)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join((self.dir / "postgres.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown: clients are disconnected
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh, empty database on the session's server."""
    return postgres_server.create_database()
