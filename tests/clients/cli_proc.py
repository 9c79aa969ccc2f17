"""Running the `llmmesh` CLI as a real subprocess (as `python -m llmmesh_client.cli`)."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

CLI = [sys.executable, "-m", "llmmesh_client.cli"]


def cli_env(**extra: str) -> dict[str, str]:
    """The test's environment without any LLMMESH_* setting that would change the CLI's defaults."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMMESH_")}
    env["PYTHONUNBUFFERED"] = "1"
    return {**env, **extra}


@dataclass
class Done:
    code: int
    out: str
    err: str


async def run_cli(*args: str, stdin: str | None = None, env: dict[str, str] | None = None,
                  timeout_s: float = 60, cli: Sequence[str] = CLI) -> Done:
    proc = await asyncio.create_subprocess_exec(
        *cli, *args, stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env or cli_env())
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin.encode() if stdin is not None else None), timeout_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return Done(proc.returncode, out.decode(), err.decode())
