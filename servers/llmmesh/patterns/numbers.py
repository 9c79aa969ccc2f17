"""Numbers in a model's text, and whether it states a result: a small model that is handed a
computed result (a tool's, a plan step's) often writes its own arithmetic instead ("144 + 6 = 190"),
and a pattern asks it once to use the result."""

from __future__ import annotations

import re
from collections.abc import Sequence

# A minus sign only where it cannot be a hyphen or an operator ("ALPHA-42", "50-8" hold 42 and 8).
_NUMBER = re.compile(r"(?:(?<![\w)])-)?\d[\d,]*(?:\.\d+)?(?:e-?\d+)?")


def raw_numbers(text: str) -> list[tuple[str, tuple[float, int]]]:
    """Each number in `text` as written, with its value and count of decimal places (thousands
    separators dropped)."""
    out = []
    for raw in _NUMBER.findall(text):
        plain = re.sub(r"(?<=\d),(?=\d{3})", "", raw).rstrip(",")
        try:
            value = float(plain)
        except ValueError:
            continue
        decimals = len(plain.split(".", 1)[1]) if "." in plain and "e" not in plain else 0
        out.append((plain, (value, decimals)))
    return out


def numbers(text: str) -> list[tuple[float, int]]:
    return [number for _, number in raw_numbers(text)]


def states(answer: str, result: float) -> bool:
    """Whether the answer writes `result`, possibly rounded (3.14 states 3.14159…)."""
    return any(value == result or (decimals < 12 and round(result, decimals) == value)
               for value, decimals in numbers(answer))


def ignores_results(answer: str, results: Sequence[float]) -> bool:
    """The answer states numbers, and none of the `results`."""
    return bool(results) and bool(numbers(answer)) and not any(states(answer, r) for r in results)
