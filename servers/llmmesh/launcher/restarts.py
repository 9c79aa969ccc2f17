"""When a crashed child comes back, and when the launcher stops trying: exponential backoff over a
child's crashes in a row, forgiven once it has stayed up a while. Pure bookkeeping, no processes."""

from __future__ import annotations

import re
from dataclasses import dataclass

# What a child's log says when its port is taken: aiohttp (simulator, gateway), Envoy, grpc's
# "Failed to bind", llama.cpp's "couldn't bind". Restarting it again would not help.
BIND_FAILURE = re.compile(r"address already in use|failed to bind|couldn't bind|cannot bind", re.IGNORECASE)


@dataclass(frozen=True)
class RestartPolicy:
    # Delay before the first restart; it doubles with every crash in a row, up to max_delay_s.
    first_delay_s: float = 0.5
    max_delay_s: float = 30.0
    # A child up this long has recovered: its next crash counts as the first again.
    stable_after_s: float = 10.0
    # Crashes in a row (each within stable_after_s of its start) after which it is not restarted.
    give_up_after: int = 5


@dataclass
class CrashHistory:
    """One child's crashes in a row."""

    policy: RestartPolicy
    in_a_row: int = 0

    def crashed(self, uptime_s: float) -> float | None:
        """Record a crash after `uptime_s` up: the delay before restart number `in_a_row`, or None
        when the policy gives up on it."""
        if uptime_s >= self.policy.stable_after_s:
            self.in_a_row = 0
        self.in_a_row += 1
        if self.in_a_row >= self.policy.give_up_after:
            return None
        return min(self.policy.first_delay_s * 2 ** (self.in_a_row - 1), self.policy.max_delay_s)


def bind_failure(log_text: str) -> bool:
    return BIND_FAILURE.search(log_text) is not None
