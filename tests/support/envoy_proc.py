"""Run the real Envoy binary in tests: start, wait until ready, read admin, always stop.

    with start_envoy(config_path) as envoy:
        envoy.wait_healthy("svc_judge")
        ...

The calls block; from an async test that also serves the upstreams on its event loop, call them
through `asyncio.to_thread` so the loop keeps answering Envoy's health checks.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ENVOY = str(Path(sys.executable).with_name("envoy"))


@dataclass
class EnvoyProcess:
    proc: subprocess.Popen
    admin_url: str
    log_path: Path

    def logs(self, tail: int = 60) -> str:
        lines = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-tail:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def __enter__(self) -> EnvoyProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def admin(self, path: str) -> str:
        with urllib.request.urlopen(self.admin_url + path, timeout=5) as resp:
            return resp.read().decode()

    def health_flags(self, cluster: str) -> dict[str, str]:
        """host:port -> health flags (`healthy`, `/failed_active_hc`, ...) from admin /clusters."""
        flags = {}
        for line in self.admin("/clusters").splitlines():
            name, _, rest = line.partition("::")
            host, _, tail = rest.partition("::")
            if name == cluster and tail.startswith("health_flags::"):
                flags[host] = tail.removeprefix("health_flags::")
        return flags

    def wait_for(self, what: str, predicate: Callable[[], bool], timeout: float = 20.0) -> None:
        """Poll until `predicate()` holds; fail with Envoy's log tail after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if self.proc.poll() is not None:
                raise RuntimeError(f"envoy exited ({self.proc.returncode}) waiting for {what}:\n{self.logs()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {what}:\n{self.logs()}")
            time.sleep(0.1)

    def wait_healthy(self, *clusters: str, timeout: float = 20.0) -> None:
        def all_healthy() -> bool:
            return all((f := self.health_flags(c)) and set(f.values()) == {"healthy"} for c in clusters)

        self.wait_for(f"healthy hosts in {', '.join(clusters)}", all_healthy, timeout)


def start_envoy(
    config_path: str | Path,
    *,
    log_dir: str | Path | None = None,
    log_level: str = "warn",
    timeout: float = 20.0,
) -> EnvoyProcess:
    """Start Envoy and return once admin answers `/ready` with LIVE (listeners are up)."""
    work = Path(log_dir or tempfile.mkdtemp(prefix="envoy-"))
    work.mkdir(parents=True, exist_ok=True)
    log_path = work / "envoy.log"
    address_path = work / "admin-address"
    address_path.unlink(missing_ok=True)
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [
            ENVOY,
            "-c", str(config_path),
            "--use-dynamic-base-id",
            "--log-level", log_level,
            "--concurrency", "1",
            # Envoy writes its admin address here once admin listens: no guessing from the config.
            "--admin-address-path", str(address_path),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    envoy = EnvoyProcess(proc, "", log_path)
    try:
        envoy.wait_for("admin address", lambda: address_path.exists() and address_path.read_text().strip() != "",
                       timeout)
        envoy.admin_url = "http://" + address_path.read_text().strip()
        envoy.wait_for("admin /ready", lambda: _ready(envoy), timeout)
    except BaseException:
        envoy.stop()
        raise
    return envoy


def _ready(envoy: EnvoyProcess) -> bool:
    try:
        return envoy.admin("/ready").strip() == "LIVE"
    except (urllib.error.URLError, ConnectionError):
        return False
