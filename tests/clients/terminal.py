"""A program driven through a real pseudo-terminal, the way a person at a keyboard drives it.

The child gets the pty as its controlling terminal (new session + TIOCSCTTY), so the line
discipline turns a typed ^C into SIGINT for it and ^D at an empty line into end-of-file.
Every wait is bounded; a failure shows what the screen held.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Sequence

# Runs in the child before the program: adopt the pty (stdin) as the controlling terminal.
_ADOPT_TTY = ("import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
              "os.execvp(sys.argv[1], sys.argv[1:])")


class Terminal:
    def __init__(self, argv: Sequence[str], env: dict[str, str], rows: int = 40, cols: int = 120) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.proc = subprocess.Popen([sys.executable, "-c", _ADOPT_TTY, *argv], stdin=slave, stdout=slave,
                                     stderr=slave, env=env, start_new_session=True, close_fds=True)
        os.close(slave)
        self.screen = ""
        self.mark = 0  # expect() searches from here on

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def _pump(self, wait_s: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], wait_s)
        if not ready:
            return True
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: the child closed the terminal
            return False
        if not data:
            return False
        self.screen += data.decode(errors="replace")
        return True

    def expect(self, pattern: str, timeout_s: float = 30.0) -> re.Match[str]:
        """Wait until `pattern` (a regex) shows after the mark; move the mark past it."""
        deadline = time.monotonic() + timeout_s
        regex = re.compile(pattern)
        while True:
            found = regex.search(self.screen, self.mark)
            if found:
                self.mark = found.end()
                return found
            remaining = deadline - time.monotonic()
            alive = self._pump(min(max(remaining, 0), 0.1)) or self.proc.poll() is None
            if remaining <= 0 or not alive:
                raise AssertionError(f"{pattern!r} did not appear within {timeout_s}s; screen after the mark:\n"
                                     f"{self.screen[self.mark:][-3000:]!r}")

    def since_mark(self) -> str:
        return self.screen[self.mark:]

    def wait(self, timeout_s: float = 30.0) -> int:
        deadline = time.monotonic() + timeout_s
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"the program did not exit within {timeout_s}s:\n{self.screen[-2000:]!r}")
            self._pump(0.05)
        return self.proc.returncode

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        os.close(self.master)
