"""How the demo talks: one numbered step per scenario, what it does and why, the command a user
could run, what came back, and PASS or FAIL. A scenario that does not behave raises
ScenarioFailed with a message saying how; the demo stops there and exits non-zero."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence
from typing import TextIO

INDENT = "      "


class ScenarioFailed(Exception):
    """A scenario did not behave as the mesh promises; the message says what was seen."""


def expect(ok: object, message: str) -> None:
    if not ok:
        raise ScenarioFailed(message)


class Narrator:
    def __init__(self, out: TextIO = sys.stdout) -> None:
        self.out = out

    def _print(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def banner(self, text: str) -> None:
        self._print(text)

    def step(self, number: int, total: int, title: str) -> None:
        self._print(f"\n[{number}/{total}] {title}")

    def explain(self, text: str) -> None:
        self._print(INDENT + text)

    def command(self, argv: Sequence[str]) -> None:
        """A command as a user would type it (binaries by name, arguments quoted for a shell)."""
        self._print(f"{INDENT}$ {shlex.join(argv)}")

    def result(self, text: str) -> None:
        self._print(f"{INDENT}  -> {text}")

    def passed(self, title: str, seconds: float) -> None:
        self._print(f"{INDENT}PASS  {title} ({seconds:.1f} s)")

    def failed(self, title: str, reason: str) -> None:
        self._print(f"{INDENT}FAIL  {title}: {reason}")
