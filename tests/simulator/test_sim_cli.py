"""``llmmesh-sim`` as a real process: flags, ready line, scripts file, graceful SIGTERM."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

MAIN = [sys.executable, "-m", "llmmesh.simulator.main"]


def test_cli_serves_until_sigterm(tmp_path: Path) -> None:
    scripts = tmp_path / "scripts.json"
    scripts.write_text(json.dumps([{"match": "ping", "response": "pong"}]))
    args = [*MAIN, "--port", "0", "--models", "tiny:1m", "--tokens", "4", "--name", "sim-cli"]
    args += ["--script-file", str(scripts), "--fault", "token_delay_ms=1", "--max-concurrency", "2"]
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 15
        url = None
        while url is None and time.monotonic() < deadline:
            line = proc.stderr.readline() if proc.stderr else ""
            if match := re.search(r"ready at (http://\S+)", line):
                url = match.group(1)
        assert url, "no ready line"
        assert [m["name"] for m in httpx.get(url + "/api/tags").json()["models"]] == ["tiny:1m"]
        body = {"model": "tiny:1m", "prompt": "ping", "stream": False}
        resp = httpx.post(url + "/api/generate", json=body)
        assert resp.json()["response"] == "pong" and resp.headers["x-sim-instance"] == "sim-cli"
        assert httpx.get(url + "/_sim/faults").json()["spec"] == "token_delay_ms=1"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_rejects_bad_fault_spec() -> None:
    done = subprocess.run([*MAIN, "--port", "0", "--fault", "bogus=1"], capture_output=True, text=True, timeout=20)
    assert done.returncode == 2 and "unknown fault key" in done.stderr
