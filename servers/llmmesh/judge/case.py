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

    def fields(self, prefix: str = "") -> dict[str, str]:
        """The caller's text by request path, so an error can name the field that is too long."""
        named = {"question": self.question, "answer": self.answer, "answer_b": self.answer_b,
                 "ground_truth": self.ground_truth, **{f"contexts[{i}]": t for i, t in enumerate(self.contexts)}}
        return {f"{prefix}{path}": text for path, text in named.items() if text}
