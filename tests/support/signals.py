"""Child processes that a test interrupts the way Ctrl-C does.

A test runner started in the background (`cmd &` in a non-interactive shell, as CI may run it)
inherits SIGINT ignored, and its children inherit that too: Python then installs no
KeyboardInterrupt handler, and a SIGINT the test sends is silently dropped. A child that must see
Ctrl-C gets the default disposition back before it starts (`preexec_fn=default_sigint`).
"""

from __future__ import annotations

import signal


def default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
