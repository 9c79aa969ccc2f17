"""The first ten minutes: how long a fresh machine takes from `git clone` to a mesh serving on the
embedded default (`./scripts/up`: venv, llama.cpp's llama-server built from source, SmolLM2, Envoy),
the most memory that bootstrap used at once, and how long a second start takes.

"Fresh" here: a new clone of this repository with no virtualenv and an empty pip cache, so every
package is downloaded and llama-server compiled as on a new machine (the system packages apt-get
would add are assumed present). Memory is the summed resident set of `./scripts/up` and every
process under it (pip, cmake, the compilers, then the mesh), sampled twice a second: what the
bootstrap itself needs, whatever else the machine runs.

    ./scripts/bench/first-start                     # writes docs/bench/first-start.md
    ./scripts/bench/first-start --warm-only         # only the later start, in this checkout
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BANNER = "llmmesh is up"
TARGET_FIRST_S, TARGET_LATER_S, TARGET_PEAK_GB = 15 * 60, 20, 4.0


@dataclass
class Start:
    seconds: float
    peak_rss_gb: float
    build_jobs: str


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def tree_rss_bytes(root: int) -> int:
    """The summed resident set of `root` and all its descendants."""
    tree, total, todo = _children(), 0, [root]
    page = os.sysconf("SC_PAGE_SIZE")
    while todo:
        pid = todo.pop()
        todo.extend(tree.get(pid, ()))
        try:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * page
        except (OSError, IndexError, ValueError):
            pass
    return total


def timed_up(checkout: Path, env: dict[str, str], timeout_s: float) -> Start:
    """`./scripts/up` in `checkout` until its banner; then Ctrl-C (its process group) and wait."""
    started = time.monotonic()
    proc = subprocess.Popen([str(checkout / "scripts" / "up")], cwd=checkout, env=env, text=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert proc.stdout is not None
    peak, done, jobs = 0, threading.Event(), ""

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.5):
            peak = max(peak, tree_rss_bytes(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    timer = threading.Timer(timeout_s, lambda: os.killpg(proc.pid, signal.SIGINT))
    timer.start()
    try:
        for line in proc.stdout:
            sys.stderr.write(f"  | {line}")
            if "compiles it with" in line:
                jobs = line.split("compiles it with", 1)[1].split("jobs")[0].strip()
            if BANNER in line:
                break
        else:
            raise SystemExit(f"./scripts/up exited with {proc.wait()} before serving")
        seconds = time.monotonic() - started
    finally:
        timer.cancel()
        done.set()
        sampler.join()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return Start(seconds, peak / 2**30, jobs)


def fresh_clone(into: Path) -> Path:
    checkout = into / "llmmesh"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(checkout)], check=True)
    return checkout


def report(first: Start | None, later: Start) -> str:
    lines = ["# First start on a fresh machine", "",
             f"- **Date**: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
             f"- **Machine**: {os.cpu_count()} CPUs, "
             f"{os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.0f} GiB; load average "
             f"{' '.join(open('/proc/loadavg').read().split()[:3])} after the run",
             "- **Method**: `scripts/bench/first_start.py` (see its docstring): a fresh clone, no virtualenv, an "
             "empty pip cache; `./scripts/up` timed to its 'llmmesh is up' banner; memory is the summed RSS of "
             "its process tree. The later start is a second `./scripts/up` in the same checkout.", "",
             "| start | time to serving | target | peak RAM (process tree) | target |",
             "|---|---:|---:|---:|---:|"]
    if first is not None:
        lines.append(f"| first (build {first.build_jobs or '?'} jobs) | {first.seconds / 60:.1f} min | "
                     f"≤ {TARGET_FIRST_S // 60} min | {first.peak_rss_gb:.2f} GB | ≤ {TARGET_PEAK_GB:.0f} GB |")
    lines.append(f"| later | {later.seconds:.1f} s | ≤ {TARGET_LATER_S} s | {later.peak_rss_gb:.2f} GB | |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scripts/bench/first-start", description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--warm-only", action="store_true", help="only time a later start, in this checkout")
    p.add_argument("--timeout", type=float, default=3600, help="give up on a start after this many seconds")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "bench" / "first-start.md")
    a = p.parse_args(argv)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLMMESH_", "VIRTUAL_ENV"))}
    if a.warm_only:
        first, checkout, scratch = None, ROOT, None
    else:
        scratch = Path(tempfile.mkdtemp(prefix="llmmesh-first-start-"))
        checkout = fresh_clone(scratch)
        env["PIP_CACHE_DIR"] = str(scratch / "pip-cache")  # empty: everything is fetched and built
        print(f"first start in {checkout} (fresh venv, empty pip cache)", file=sys.stderr)
        first = timed_up(checkout, env, a.timeout)
    try:
        print("later start", file=sys.stderr)
        later = timed_up(checkout, env, a.timeout)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    text = report(first, later)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
