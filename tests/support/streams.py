"""Comparing a stream's event kinds when a relay may coalesce its token deltas.

Behind a reader that lags (a loaded machine is enough) the relays send the deltas that queued up as
one message, so how many `delta` events a stream has is not part of the contract; their order
against the other events, and the tokens they carry (`done.output_tokens`), are.
"""

from __future__ import annotations

from collections.abc import Sequence


def collapsed(kinds: Sequence[str]) -> list[str]:
    """`kinds` with each run of consecutive `delta`s as one."""
    out: list[str] = []
    for kind in kinds:
        if not (kind == "delta" and out and out[-1] == "delta"):
            out.append(kind)
    return out
