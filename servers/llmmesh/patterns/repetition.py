"""A loop guard for free text: small models under greedy decoding fall into loops ("Your Favorite
Bakery. Your Favorite Bakery. …"). A pattern never returns such a loop as its answer: it keeps the
text up to the end of the first occurrence of the repeated span.

A loop is a span of at least `_MIN_SPAN` characters that occurs `_MIN_REPEATS` times back to back
(whitespace aside). Ordinary prose repeats words and short phrases, never a long span several
times in a row, so honest text is left untouched.
"""

from __future__ import annotations

import re

_MIN_SPAN = 8
_MAX_SPAN = 400
_MIN_REPEATS = 3


def _loop_start(text: str) -> tuple[int, int] | None:
    """(start, span length) of the earliest back-to-back repetition in `text`, or None."""
    n = len(text)
    best: tuple[int, int] | None = None
    for span in range(_MIN_SPAN, min(_MAX_SPAN, n // _MIN_REPEATS) + 1):
        # Compare each character with the one `span` earlier: a run of matches as long as
        # (repeats - 1) spans means the span occurs `repeats` times in a row.
        run = 0
        for i in range(span, n):
            run = run + 1 if text[i] == text[i - span] else 0
            if run >= span * (_MIN_REPEATS - 1):
                start = i - run - span + 1
                if best is None or start < best[0]:
                    best = (start, span)
                break
    return best


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def is_degenerate(text: str) -> bool:
    return _loop_start(_squash(text)) is not None


def cut_repetition(text: str) -> str:
    """`text` with any degenerate loop removed: the first occurrence of the repeated span stays."""
    squashed = _squash(text)
    found = _loop_start(squashed)
    if found is None:
        return text.strip()
    start, span = found
    return squashed[:start + span].strip()
