"""Deterministic embeddings: feature hashing of words and character trigrams, L2-normalised.

Texts that share words get a positive cosine similarity, which keeps retrieval demos plausible.
The model name salts the hashes, so different models live in different vector spaces.
"""

from __future__ import annotations

import hashlib
import math
import re

_WORD = re.compile(r"\w+")


def _bucket(model: str, feature: str, dim: int) -> tuple[int, float]:
    digest = hashlib.blake2b(f"{model}\x00{feature}".encode(), digest_size=8).digest()
    index = int.from_bytes(digest[:4], "big") % dim
    sign = 1.0 if digest[4] & 1 else -1.0
    return index, sign


def embed_text(model: str, text: str, dim: int) -> list[float]:
    vector = [0.0] * dim
    words = _WORD.findall(text.lower())
    for word in words:
        index, sign = _bucket(model, word, dim)
        vector[index] += sign
        padded = f"<{word}>"
        for i in range(len(padded) - 2):
            index, sign = _bucket(model, "#" + padded[i : i + 3], dim)
            vector[index] += 0.5 * sign
    if not words:  # no words (empty or only punctuation): a fixed vector derived from the raw text
        index, sign = _bucket(model, "raw:" + text, dim)
        vector[index] = sign
    norm = math.sqrt(sum(v * v for v in vector))
    return [v / norm for v in vector]
