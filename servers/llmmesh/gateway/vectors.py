"""Embedding vectors as the front doors return them."""

from __future__ import annotations

import math
from collections.abc import Sequence


def shorten(values: Sequence[float], dims: int | None) -> list[float]:
    """`dimensions`: keep the first N and renormalise to unit length (OpenAI's text-embedding-3 rule,
    and Ollama's)."""
    if dims is None or dims >= len(values):
        return list(values)
    head = list(values[:dims])
    norm = math.sqrt(sum(v * v for v in head)) or 1.0
    return [v / norm for v in head]
