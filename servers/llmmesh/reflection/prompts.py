"""The messages of the three reflection calls (write, critique, revise), the critique schema and
each free-text step's token budget."""

from __future__ import annotations

from typing import Any

from llmmesh.common.model_call import ChatMessage
from llmmesh.patterns.context import CHARS_PER_TOKEN
from llmmesh.reflection.request import MAX_SCORE

DEFAULT_CRITERIA = "correctness, completeness, clarity and concision"
# Output budget of a first draft when the caller sets no max_tokens: a paragraph or two (a caller
# who wants more sets options.max_tokens).
DRAFT_TOKENS = 192
# A revision may grow, within reason.
MAX_DRAFT_TOKENS = 1024
# Feedback a writer can act on in one revision: a few concrete sentences.
MAX_FEEDBACK_CHARS = 200

WRITER_SYSTEM = "You are a careful writer. Complete the task. Reply with the draft only, no preamble."
CRITIC_SYSTEM = (
    "You are a demanding, fair critic. Say concretely what should change in the draft, then score it against "
    "the task and the criteria from 0 (useless) to 10 (cannot be improved). Answer in JSON with the keys "
    "\"feedback\" and \"score\"."
)
REVISER_SYSTEM = (
    "You revise drafts. Rewrite the draft so that it addresses every point of the feedback and still fulfils "
    "the task. Reply with the complete revised draft only, no preamble."
)

# Feedback first, so the score is written after (and informed by) the critique; an integer score,
# because a small model writes "7.5000000…" when a number may have any fraction.
CRITIQUE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "feedback": {"type": "string", "minLength": 1, "maxLength": MAX_FEEDBACK_CHARS},
        "score": {"type": "integer", "minimum": 0, "maximum": int(MAX_SCORE)},
    },
    "required": ["feedback", "score"],
}


def revision_budget(draft: str) -> int:
    """About a third more than the draft it revises (the estimate over-counts its tokens by that)."""
    return min(MAX_DRAFT_TOKENS, max(DRAFT_TOKENS, len(draft) // CHARS_PER_TOKEN))


def _criteria(criteria: str) -> str:
    return f"\n\nCriteria:\n{criteria}" if criteria else ""


def draft_messages(task: str, criteria: str) -> list[ChatMessage]:
    return [ChatMessage("system", WRITER_SYSTEM), ChatMessage("user", f"{task}{_criteria(criteria)}")]


def critique_messages(task: str, criteria: str, draft: str) -> list[ChatMessage]:
    return [
        ChatMessage("system", CRITIC_SYSTEM),
        ChatMessage("user", f"Task:\n{task}{_criteria(criteria or DEFAULT_CRITERIA)}\n\n"
                            f"Draft to critique:\n{draft}"),
    ]


def revision_messages(task: str, criteria: str, draft: str, score: float, feedback: str) -> list[ChatMessage]:
    return [
        ChatMessage("system", REVISER_SYSTEM),
        ChatMessage("user", f"Task:\n{task}{_criteria(criteria)}\n\nCurrent draft:\n{draft}\n\n"
                            f"Critic's feedback (score {score:g}/10):\n{feedback}"),
    ]
