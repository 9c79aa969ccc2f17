"""Is a model's text usable as an answer? A small model under a JSON schema sometimes writes the
schema's key ("rationale"), a template's slot ("<answer>") or punctuation debris where the text
belongs; a pattern repairs that (structured.stream_json's `check`) instead of returning it."""

from __future__ import annotations

import re

# What a schema's key or a template's slot looks like when written as the text itself.
PLACEHOLDERS = frozenset({
    "answer", "final answer", "final_answer", "winner", "reasoning", "rationale", "synthesis", "draft",
    "revision", "text", "content", "response", "output", "result", "none", "null", "n/a", "todo", "tbd",
    "placeholder", "your answer", "string", "...", "…",
})
_SLOT = re.compile(r"<[^<>]*>|\{\{?[^{}]*\}?\}|\[[a-z _]*\]")


def is_placeholder(text: str) -> bool:
    bare = text.strip().strip("\"'`*.:").strip().lower()
    return not bare or bare in PLACEHOLDERS or _SLOT.fullmatch(bare) is not None


def _readable(text: str) -> bool:
    """Mostly letters and digits: prose or a number, not a run of JSON or code punctuation."""
    visible = [c for c in text if not c.isspace()]
    return sum(c.isalnum() for c in visible) * 2 >= len(visible)


def unusable(text: str, what: str = "the answer") -> str:
    """Why `text` is no answer a person can use, as a repair instruction; "" when it is usable."""
    if is_placeholder(text):
        return f"{what} is a placeholder; write the actual text"
    if not _readable(text):
        return f"{what} is not readable text; write it in words or numbers"
    return ""
