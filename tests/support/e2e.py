"""Helpers for end-to-end tests through the real binaries: grpcurl, curl, SSE bodies, /proc.

Everything here is synchronous and bounded: every subprocess has a timeout and every wait has a
deadline, so a broken mesh fails a test instead of hanging the run.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

# Both installed by the dev extras next to this interpreter; never looked up on PATH.
GRPCURL = str(Path(sys.executable).parent / "grpcurl")
CURL = shutil.which("curl")


def run(argv: list[str], timeout_s: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL)


def grpcurl(*args: str, timeout_s: float = 30.0) -> subprocess.CompletedProcess[str]:
    return run([GRPCURL, *args], timeout_s)


def curl(*args: str, timeout_s: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run curl; stdout is decoded without newline translation, so `-i` keeps its CRLF headers."""
    assert CURL, "the curl binary is not on PATH"
    done = subprocess.run([CURL, "--max-time", str(int(timeout_s)), *args], capture_output=True,
                          timeout=timeout_s + 5, stdin=subprocess.DEVNULL)
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(), done.stderr.decode())


def json_stream(text: str) -> list[Any]:
    """grpcurl prints one pretty-printed JSON document per message, back to back."""
    decoder = json.JSONDecoder()
    out, pos = [], 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos == len(text):
            return out
        value, pos = decoder.raw_decode(text, pos)
        out.append(value)


def split_http_response(raw: str) -> tuple[int, dict[str, str], str]:
    """`curl -i` output -> (status, lower-cased headers, body)."""
    head, sep, body = raw.partition("\r\n\r\n")
    assert sep, f"no header/body separator in curl output:\n{raw[:2000]}"
    status_line, *header_lines = head.split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def sse_events(body: str) -> list[Any]:
    """`data: {...}\\n\\n` frames (Envoy's stream_sse_style_delimited) -> parsed JSON events."""
    assert body.endswith("\n\n"), f"SSE body does not end with a blank line: {body[-200:]!r}"
    frames = body.removesuffix("\n\n").split("\n\n")
    assert all(f.startswith("data: ") for f in frames), body
    return [json.loads(f.removeprefix("data: ")) for f in frames]


def wait_until(predicate: Callable[[], T], timeout_s: float, what: str, interval_s: float = 0.05) -> T:
    """Poll `predicate` until it returns something truthy.

    Exceptions count as "not yet" (connection refused and the like), except AssertionError: a
    predicate asserts what must hold on every poll, and that fails at once.
    """
    deadline = time.monotonic() + timeout_s
    last: object = None
    while True:
        try:
            value = predicate()
        except AssertionError:
            raise
        except Exception as exc:
            value, last = None, exc  # type: ignore[assignment]
        else:
            last = value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what} (last: {last!r})")
        time.sleep(interval_s)


# --- processes, read from /proc (Linux) --------------------------------------------------------


def cmdline(pid: int) -> list[str] | None:
    """argv of a live process; None if it is gone or a zombie (empty cmdline)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a] or None


def _ppid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid ...": comm may contain spaces and parentheses.
    return int(stat.rsplit(")", 1)[1].split()[1])


def all_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def descendants(root: int) -> dict[int, list[str]]:
    """Every live descendant of `root` with its argv."""
    parents = {pid: _ppid(pid) for pid in all_pids()}
    found: dict[int, list[str]] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in found and (argv := cmdline(pid)):
                found[pid] = argv
                frontier.append(pid)
    return found


def processes_where(predicate: Callable[[list[str]], bool]) -> dict[int, list[str]]:
    out = {}
    for pid in all_pids():
        argv = cmdline(pid)
        if argv and predicate(argv):
            out[pid] = argv
    return out


def environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.decode(errors="replace").partition("=") for item in raw.split(b"\0") if item)
    return {k: v for k, _, v in pairs}
