"""The material a judge evaluates, as plain values."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    question: str
    answer: str
    contexts: tuple[str, ...] = ()
    # Reference answer; empty when none was given.
    ground_truth: str = ""
    # The second answer of a pairwise comparison.
    answer_b: str = ""
